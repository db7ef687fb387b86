"""Golden files of every rendered script and command line (regenerate: S2L2A_REGOLDEN=1).

The rules each directive follows, with the documentation that states them:

- LSF (IBM Spectrum LSF 10.1 command reference, bsub/bjobs/bkill/bmod pages):
  ``#BSUB`` lines are read only when the script comes on standard input (``bsub < script``);
  ``-J "name[1-N]%K"`` makes an array of N elements, K at once; ``%J``/``%I`` in ``-o``/``-e``
  become job id and index; ``-M`` and ``rusage[mem=]`` are in LSF_UNIT_FOR_LIMITS (when unset: -M in KB, rusage in MB);
  ``-W [hour:]minute``; ``-x`` exclusive; ``span[hosts=1]`` keeps all slots on one host;
  ``bjobs -json`` only formats ``-o`` output; ``bkill "ID[i]"`` one element; ``bmod -W``.
- Slurm (sbatch/squeue/scancel/scontrol man pages, 22.05): ``--array=1-N%K``; ``--mem`` per node
  with unit suffix M; ``--time=HH:MM:SS``; ``--requeue``; ``%A``/``%a`` array job id and index in
  ``--output``; ``scancel ID_i``; ``scontrol update JobId=ID TimeLimit=minutes``.
- PBS Pro (qsub ``-J start-end``, ``select=1:ncpus=:mem=``, ``place=excl``) and Torque (``-t
  start-end%K``, ``nodes=1:ppn=,mem=,walltime=``); ``qstat -f -t -x`` (Pro: -x finished jobs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from s2l2a.engines.lsf import LSF
from s2l2a.engines.pbs import PBS
from s2l2a.engines.scheduler import ClusterOptions
from s2l2a.engines.slurm import Slurm

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "engines" / "golden"
WORKER = ["/opt/py/bin/python", "-m", "s2l2a", "worker", "--campaign", "/data/lab campaign", "--manifest", "s2l2a_c_1"]
CASES = {
    "slurm_per_product": (Slurm, dict(queue="normal", account="p1", max_concurrent=10, memory_mb=4096), 1),
    "slurm_whole_node": (Slurm, dict(memory_mb=4096, placement="whole_node", node_cores=16,
                                     node_memory_mb=65536), 16),
    "lsf_per_product_kb": (LSF, dict(queue="long", account="lab", max_concurrent=50, memory_mb=4096,
                                     lsf_unit="KB"), 1),
    "lsf_whole_node_mb": (LSF, dict(queue="normal", memory_mb=4096, lsf_unit="MB", placement="whole_node",
                                    node_cores=16, node_memory_mb=65536, select="mem>64000",
                                    extra_directives=['-R "span[ptile=16]"']), 16),
    "pbs_pro": (PBS, dict(queue="workq", account="a1", memory_mb=2048, exclusive=True), 1),
    "pbs_torque": (PBS, dict(memory_mb=2048, pbs_flavour="torque", max_concurrent=4), 1),
}


def _rendered(name: str) -> str:
    cls, opts, parallel = CASES[name]
    s = cls(ClusterOptions(**opts))
    text = s.render(campaign_name="c", array_name="s2l2a_c_1", n_elements=12, products_per_element=parallel,
                    parallel=parallel, walltime_s=5400, log_dir="logs/cluster", worker_argv=WORKER)
    argv = [s.status_argv("4711"), s.cancel_argv("4711"), s.cancel_argv("4711", 3), s.extend_argv("4711", 7200)]
    return text + "\n# command lines:\n" + "".join(f"# {' '.join(a)}\n" for a in argv)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendered_scripts_match_golden_files(name):
    path = GOLDEN / f"{name}.sh"
    text = _rendered(name)
    if os.environ.get("S2L2A_REGOLDEN"):
        path.write_text(text)
    assert path.read_text() == text


def test_golden_rules():
    lsf = (GOLDEN / "lsf_whole_node_mb.sh").read_text().splitlines()
    # whole node: 16 products x 1 core, 16 x 4096 MB in MB units, exclusive, one host
    assert "#BSUB -n 16" in lsf and "#BSUB -M 65536" in lsf and "#BSUB -x" in lsf
    assert '#BSUB -R "rusage[mem=65536] span[hosts=1] select[mem>64000]"' in lsf
    assert '#BSUB -R "span[ptile=16]"' in lsf
    assert "# bjobs -a -o jobid jobindex stat exit_code exit_reason -json 4711" in lsf
    kb = (GOLDEN / "lsf_per_product_kb.sh").read_text()
    assert "#BSUB -M 4194304" in kb  # KB: LSF's unit when LSF_UNIT_FOR_LIMITS is unset
    slurm = (GOLDEN / "slurm_whole_node.sh").read_text().splitlines()
    assert "#SBATCH --cpus-per-task=16" in slurm and "#SBATCH --mem=65536M" in slurm and "#SBATCH --exclusive" in slurm
    pbs = (GOLDEN / "pbs_pro.sh").read_text().splitlines()
    assert "#PBS -l place=excl" in pbs and "# qdel 4711[3]" in pbs
