"""bench/ncu_lines.py: ncu's per-instruction stall samples by function, file and line, through nvdisasm -g."""
import gzip
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "ncu_lines.py")

# nvdisasm -g -c's form: a section per kernel, line markers before instructions, subfunctions typed.
DISASSEMBLY = """\
//--------------------- .text._ZN2mk4cuda10megakernelILb0ENS0_11GenericSpecEEEvNS0_12KernelParamsE ---
        /*0000*/                   LDC R1, c[0x0][0x28] ;
//--------------------- .text._ZN2mk4cuda10megakernelILb1ENS0_11GenericSpecEEEvNS0_12KernelParamsE ---
\t//## File "/src/cuda/megakernel.cuh", line 130
        /*0000*/                   BAR.SYNC.DEFER_BLOCKING 0x1, 0x100 ;
\t//## File "/src/cuda/ops/mma_gemm.cuh", line 123
        /*0010*/                   LDGSTS.E.BYPASS.128 [R1], desc[UR4][R2.64] ;
        /*0020*/                   LDGSTS.E.BYPASS.128 [R1+0x10], desc[UR4][R2.64+0x10] ;
        .type           $_ZN2mk4cuda10megakernelILb1ENS0_11GenericSpecEEEvNS0_12KernelParamsE$_ZN2mk4cuda16gemm_store_pairsEv,@function
\t//## File "/src/cuda/ops/mma_gemm.cuh", line 140
        /*0030*/                   STG.E [R2.64], R0 ;
"""


def test_samples_by_function_file_and_line(tmp_path):
    dis = tmp_path / "dis.txt"
    dis.write_text(DISASSEMBLY)
    csv_path = tmp_path / "sass.csv.gz"
    with gzip.open(csv_path, "wt") as f:
        f.write('"Kernel Name","megakernel<(bool)1>"\n')
        f.write('"Address","Source","Warp Stall Sampling (All Samples)","Warp Stall Sampling (Not-issued Samples)"\n')
        for addr, samples in [(0x7f0000, 50), (0x7f0010, 20), (0x7f0020, 10), (0x7f0030, 20)]:
            f.write(f'"{addr:#x}","X","{samples}","0"\n')
    r = subprocess.run([sys.executable, SCRIPT, str(csv_path), str(dis), "--kernel", "megakernelILb1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "100 samples; 0 at offsets the disassembly does not have" in out
    assert "  80.0%  kernel body" in out
    assert "  20.0%  _ZN2mk4cuda16gemm_store_pairsEv" in out
    assert "  50.0%  /src/cuda/ops/mma_gemm.cuh\n" in out  # lines 123 (30) and 140 (20)
    assert "  50.0%  /src/cuda/megakernel.cuh:130" in out
    assert "  30.0%  /src/cuda/ops/mma_gemm.cuh:123" in out


def test_without_a_disassembly_the_csvs_own_rows(tmp_path):
    # ncu_step.sh's tables: the page's rows with the most samples, on the SASS or the CUDA source page.
    page = tmp_path / "source.csv"
    page.write_text('"#","Source","Warp Stall Sampling (All Samples)"\n'
                    '"12","x = y;","25"\n"13","return;","75"\n"14","// no samples","-"\n')
    r = subprocess.run([sys.executable, SCRIPT, str(page)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == " 75.0%        13  return;\n 25.0%        12  x = y;\n"
    page.write_text('"#","Source"\n"12","x = y;"\n')
    r = subprocess.run([sys.executable, SCRIPT, str(page)], capture_output=True, text=True)
    assert r.returncode != 0 and "no sampling column" in r.stderr


def test_rank_by_another_column(tmp_path):
    # E.g. shared memory bank conflicts by line: the source page's "L1 Wavefronts Shared Excessive".
    page = tmp_path / "source.csv"
    page.write_text('"#","Source","Warp Stall Sampling (All Samples)","L1 Wavefronts Shared Excessive"\n'
                    '"12","x = y;","25","300"\n"13","return;","75","0"\n"14","s[i] = v;","-","100"\n')
    args = [sys.executable, SCRIPT, str(page), "--column", "Shared Excessive", "--top", "2"]
    r = subprocess.run(args, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == " 75.0%        12  x = y;\n 25.0%        14  s[i] = v;\n"
    r = subprocess.run(args[:-4] + ["--column", "Bank"], capture_output=True, text=True)
    assert r.returncode != 0 and "no column named like 'Bank'; the page has: #, Source" in r.stderr
    r = subprocess.run(args[:3] + [str(page), "--column", "Shared"], capture_output=True, text=True)
    assert r.returncode != 0 and "give no disassembly" in r.stderr
