#!/usr/bin/env python3
# Generator of tests/data/tokenizer/corpus.txt: the tokenizer conformance corpus, one text per
# line (hand-written tricky lines plus seeded random ones); rerunning gives the same bytes.
"""Writes corpus.txt beside this script. Run: python3 tests/data/tokenizer/make_corpus.py

Lines never contain "\\n" (the file's separator); everything else is fair game: tabs, CR, form
feeds, U+2028, NUL-free control characters, every script, emoji sequences, special-token text.
"""
import pathlib
import random
import unicodedata

HERE = pathlib.Path(__file__).resolve().parent
SEED = 20240611
TARGET_LINES = 2400

HAND_WRITTEN = r"""
Hello world
hello world
 Hello world
  Hello  world  
Hello, world! How are you doing today?
I'm fine, thanks. You're welcome. We've been there. They'll come. He'd know. It's done.
DON'T STOP. I'M HERE. WE'LL SEE. SHE'S GONE. THEY'RE BACK. I'D GO. YOU'VE WON. IT'S TIME.
Don'T mIx CaSeS'Re wEiRd'Ve 'S 'T 'RE 'VE 'M 'LL 'D
'tis the season, 'twas the night; rock 'n' roll; the '90s; o'clock; y'all'd've
isn't aren't wasn't weren't hasn't haven't hadn't won't wouldn't don't doesn't didn't can't couldn't shouldn't mightn't mustn't
’Curly’ apostrophes don’t split the same way as 'straight' ones
'ſ ſtop 'ſt long s folds to s
<|im_start|>system
<|im_start|>user Hi there<|im_end|>
<|im_start|>assistant
<|endoftext|>
text before<|endoftext|>text after
<|endoftext|><|endoftext|><|endoftext|>
 <|endoftext|> 
<s>Hello</s>
<s> Hello </s>
<s><s></s></s>
<<s>> <</s>> <|<|im_start|>|> <|im_start <|im_end| |im_start|>
<unk> <pad> <mask> [CLS] [SEP] [UNK]
<|begin_of_text|><|start_header_id|>user<|end_header_id|>Hi<|eot_id|>
<|reserved_special_token_0|> <|reserved_special_token_250|> <|reserved_special_token_99|>
<repo_name>foo<file_sep>bar<filename>baz.py<gh_stars>10
<jupyter_start><jupyter_code>print(1)<jupyter_output>1<empty_output>
<think>reasoning</think> <tool_call>{"name": "f"}</tool_call>
<|user|> question <|end|> <|assistant|> answer <|endoftext|>
[INST] Hello [/INST] <<SYS>> system <</SYS>>
def fibonacci(n: int) -> int: return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)
    for i in range(10):  # four spaces of indent
		if (x == 0) { return; }	// tabs
	 	 mixed	tabs  and   spaces	 
int main(int argc, char** argv) { std::vector<int> v{1, 2, 3}; return v.size() > 2 ? 0 : 1; }
fn main() { let x: Vec<u8> = vec![0xFF; 16]; println!("{:?}", x); }
const f = async (a, b) => { await fetch(`https://example.com/api?q=${a}&r=${b}`); };
SELECT id, name FROM users WHERE created_at >= '2024-01-01' AND status IN ('active', 'pending');
#include <iostream>\n#include <string>\nint main() {\n  std::cout << "hi\\n";\n}\n
line one\nline two\n\nline four\n\n\n\nline eight
\n\n\n\n\n\n\n\n\n\n
\t\t\t\n\r\n\r\r\n
a\\nb\\\\nc \\t \\r \\\\ \" \' \0 \x41 \u00e9
{"name": "Ada", "age": 36, "tags": ["math", "code"], "nested": {"ok": true, "v": null, "pi": 3.14159}}
[{"id":1},{"id":2},{"id":3}]
https://www.example.com/path/to/page.html?query=string&foo=bar#fragment
http://localhost:8080/api/v1/users/12345/posts?limit=20&offset=40
mailto:someone@example.org ftp://files.example.net/pub/file.tar.gz
user.name+tag@sub.domain.co.uk
1234567890 12345678901234567890 3.14159265358979 -0.000001 1e-10 6.022e23 1,000,000 1.000.000,00
+1 (555) 123-4567 2024-06-11T12:34:56Z 12:00 v1.2.3 0xDEADBEEF 0b1010 0o777 127.0.0.1 ::1
١٢٣٤٥ ٦٧٨٩٠ ۱۲۳ १२३४ ১২৩ ๑๒๓ １２３４５ ²³¹ ½ ¾ ⅓ Ⅻ ⅷ ① ⑳
2^32 = 4294967296; 2^64 = 18446744073709551616
こんにちは世界。今日はいい天気ですね。
你好，世界！这是一个测试句子。
안녕하세요 세계! 한국어 텍스트입니다.
مرحبا بالعالم! هذا نص عربي للاختبار.
שלום עולם! זהו טקסט בעברית.
नमस्ते दुनिया! यह हिंदी में एक परीक्षण वाक्य है।
สวัสดีชาวโลก ภาษาไทยไม่มีช่องว่างระหว่างคำ
Привет, мир! Это тест на русском языке.
Γειά σου Κόσμε! Ελληνικά κείμενα.
Ḽơᶉëᶆ ȋṕšᶙṁ ḍỡḽǭᵳ ʂǐť ӓṁệẗ
café naïve résumé coöperate façade Ångström Zürich São Paulo
café naïve résumé (decomposed accents)
é é e̊ ǻ ḉ ệ ṩ
Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ text with stacked combining marks
👍 👍🏻 👍🏼 👍🏽 👍🏾 👍🏿
👨‍👩‍👧‍👦 👩‍❤️‍👨 🏳️‍🌈 🏴‍☠️ 👩🏽‍💻 🧑🏿‍🚀 👁️‍🗨️
🇯🇵 🇺🇸 🇫🇷 🇩🇪 🏴󠁧󠁢󠁳󠁣󠁴󠁿
I love 🍕 and 🍣! 😂😂😂 🤔💭 ❤️ ♥ ☺️ ✌🏾
😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗☺😚😙🥲😋😛😜🤪😝🤑🤗🤭🤫🤔
Mixed: English, 日本語, 한국어, العربية, हिन्दी, and emoji 🎉 in one line!
$$\int_0^\infty e^{-x^2}\,dx = \frac{\sqrt{\pi}}{2}$$
**bold** _italic_ `code` ~~strike~~ > quote - [ ] task | a | b |
<div class="container"><p id='x'>Hello &amp; welcome&nbsp;!</p></div>
!!!!!!!!!!!!!!!! ???????? ........ -------- ======== ________ ******** ########
aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
Supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis
trailing spaces      
      leading spaces
        
	
 
x
 x
x 
  x  
a  b   c    d     e      f
¡¿ «» „“ ‹› — – … · • ° © ® ™ § ¶ † ‡ ‰ ′ ″ € £ ¥ ₹ ₽ ₿
       
       
       
       
       
""".strip("\n").split("\n")

# Raw-string lines above keep backslash escapes literal; these use real control characters.
CONTROL_LINES = [
    "tab\tseparated\tvalues\there",
    "carriage\rreturn\r\rinside",
    "form\x0cfeed and vertical\x0btab",
    "crlf style\r",
    "\r\r\r",
    "unicode line\u2028separator and\u2029paragraph and\x85next line",
    "nbsp\u00a0here and\u2009thin\u200aspaces\u3000ideographic",
    "zero\u200bwidth\u200cjoiner\u200dtest\ufeffbom",
    "bell\x07 escape\x1b[31mred\x1b[0m del\x7f",
    "\x01\x02\x03 control chars \x1f",
    "soft\u00adhyphen and\u2060word joiner",
    " \t \t \t",
    "\t\tx",
    "x\t\t",
    " \r x",
    "a \r\x0b b",
    "   \r\x0c",
]

WORDS = """the of and to in is you that it he was for on are as with his they at be this have from
or one had by word but not what all were we when your can said there use an each which she do how
their if will up other about out many then them these so some her would make like him into time has
look two more write go see number no way could people my than first water been call who oil its now
find long down day did get come made may part function return class import const let var struct
async await yield lambda print self None True False null undefined NaN Infinity""".split()

SCRIPTS = {
    "latin_ext": (0x00C0, 0x024F), "greek": (0x0370, 0x03FF), "cyrillic": (0x0400, 0x04FF),
    "hebrew": (0x05D0, 0x05EA), "arabic": (0x0620, 0x064A), "devanagari": (0x0900, 0x097F),
    "thai": (0x0E01, 0x0E5B), "hangul": (0xAC00, 0xD7A3), "hiragana": (0x3041, 0x3096),
    "katakana": (0x30A1, 0x30FA), "cjk": (0x4E00, 0x9FFF), "combining": (0x0300, 0x036F),
    "symbols": (0x2190, 0x23FF), "emoji": (0x1F300, 0x1FAFF), "math": (0x1D400, 0x1D7FF),
    "halfwidth": (0xFF01, 0xFFEE), "cjk_ext_b": (0x20000, 0x2A6DF),
}
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<s>", "</s>", "<unk>",
            "<|begin_of_text|>", "<|eot_id|>", "<|end_of_text|>", "<repo_name>", "<file_sep>"]
EMOJI = ["👍", "👍🏽", "👨‍👩‍👧", "🏳️‍🌈", "🇯🇵", "😂", "🎉", "❤️", "🤔", "👩🏿‍🔬", "🙏🏼"]
PUNCT = list(".,;:!?()[]{}<>\"'`~@#$%^&*-_=+/\\|")
SPACES = [" ", "  ", "   ", "\t", " \t", "\t ", "    ", "\r", "\u00a0", "\u3000"]


def assigned(cp):
    return unicodedata.category(chr(cp)) not in ("Cn", "Cs", "Co")


def random_char(rng, script):
    lo, hi = SCRIPTS[script]
    while True:
        cp = rng.randint(lo, hi)
        if assigned(cp):
            return chr(cp)


def random_word(rng):
    r = rng.random()
    if r < 0.55:
        w = rng.choice(WORDS)
        k = rng.random()
        return w.upper() if k < 0.1 else w.capitalize() if k < 0.3 else w
    if r < 0.75:
        script = rng.choice(list(SCRIPTS))
        return "".join(random_char(rng, script) for _ in range(rng.randint(1, 8)))
    if r < 0.85:
        return str(rng.randint(0, 10 ** rng.randint(1, 20)))
    if r < 0.92:
        return rng.choice(EMOJI) * rng.randint(1, 3)
    return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 4)))


def random_line(rng):
    kind = rng.random()
    parts = []
    for _ in range(rng.randint(1, 18)):
        parts.append(random_word(rng))
        r = rng.random()
        if r < 0.7:
            parts.append(" ")
        elif r < 0.85:
            parts.append(rng.choice(SPACES))
        elif r < 0.92:
            parts.append(rng.choice(PUNCT) + " ")
        elif r < 0.96:
            parts.append(rng.choice(SPECIALS))
        else:
            parts.append("\\n" * rng.randint(1, 4))
    line = "".join(parts)
    if kind < 0.1:
        line = rng.choice(SPACES) + line
    elif kind < 0.2:
        line = line + rng.choice(SPACES)
    elif kind < 0.25:
        line = unicodedata.normalize("NFD", line)
    elif kind < 0.3:
        line = "'" + rng.choice(["s", "S", "t", "T", "re", "RE", "ve", "Ve", "m", "M", "ll", "LL", "d", "D"]) + " " + line
    return line.replace("\n", " ")


def code_line(rng):
    templates = [
        "{ind}def {w}_{n}(self, {w2}={n2}):",
        "{ind}return {w}[{n}] + {w2}.{w}({n2}, '{w2}')",
        "{ind}if ({w} != {n} && {w2} <= {n2}) {{ {w}++; }}",
        "{ind}let {w}: Vec<i{bits}> = ({n}..{n2}).map(|x| x * {n}).collect();",
        "{ind}const {w} = document.querySelector('#{w2}-{n}');",
        "{ind}fmt.Printf(\"%d %s\\n\", {n}, \"{w}\")",
        "{ind}{w}_{w2} = {{\"{w}\": {n}, \"{w2}\": [{n}, {n2}, null]}}",
        "{ind}SELECT {w}, COUNT(*) FROM {w2} GROUP BY {w} HAVING COUNT(*) > {n};",
        "{ind}echo \"${w}\" | grep -E '^[a-z]+{n}$' >> /tmp/{w2}.log 2>&1",
        "{ind}<{w} class=\"{w2}\">{n}</{w}>",
        "{ind}#define {W}_{n} ({n2}u << {bits})",
        "{ind}// TODO({w}): {w2} {n} times",
    ]
    t = rng.choice(templates)
    ind = rng.choice(["", "  ", "    ", "\t", "\t\t", "        ", "  \t"])
    return t.format(ind=ind, w=rng.choice(WORDS), w2=rng.choice(WORDS), W=rng.choice(WORDS).upper(),
                    n=rng.randint(0, 999999), n2=rng.randint(0, 99), bits=rng.choice([8, 16, 32, 64]))


def main():
    rng = random.Random(SEED)
    lines = [l for l in HAND_WRITTEN] + CONTROL_LINES
    while len(lines) < TARGET_LINES:
        r = rng.random()
        lines.append(code_line(rng) if r < 0.25 else random_line(rng))
    for l in lines:
        assert "\n" not in l
    (HERE / "corpus.txt").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    print(f"wrote {len(lines)} lines to {HERE / 'corpus.txt'}")


if __name__ == "__main__":
    main()
