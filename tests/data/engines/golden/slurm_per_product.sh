#!/bin/bash
# s2l2a campaign c: array s2l2a_c_1 (12 elements, 1 product(s) each)
#SBATCH --job-name=s2l2a_c_1
#SBATCH --array=1-12%10
#SBATCH --cpus-per-task=1
#SBATCH --mem=4096M
#SBATCH --time=01:30:00
#SBATCH --requeue
#SBATCH --output=logs/cluster/s2l2a_c_1_%A_%a.out
#SBATCH --partition=normal
#SBATCH --account=p1

exec /opt/py/bin/python -m s2l2a worker --campaign '/data/lab campaign' --manifest s2l2a_c_1 --index "$SLURM_ARRAY_TASK_ID"

# command lines:
# squeue --json --states=all --jobs 4711
# scancel 4711
# scancel 4711_3
# scontrol update JobId=4711 TimeLimit=120
