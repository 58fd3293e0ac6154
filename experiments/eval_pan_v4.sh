# usage: bash experiments/eval_pan_v4.sh RUN_OR_WORLD NAME CORE  (pan keys only, 2 steps, guidance ${G:-1}; RUN with a checkpoint is exported first)
cd "$(dirname "$0")/.."  # the repository root
R=$1; N=$2; CORE=$3; G=${G:-1}; STEPS=${STEPS:-2}; W=.venv/bin/wm; mkdir -p results/v4
if [ -f $R/world.json ]; then EXP=$R; else EXP=runs/${N}_world; [ -d $EXP ] || $W export-world $R --name pan --out $EXP --steps $STEPS --guidance $G \
  --keys 'up=pan up,down=pan down,left=pan left,right=pan right,w=pan up,s=pan down,a=pan left,d=pan right' \
  --start-image .venv/lib/python3*/site-packages/matplotlib/mpl-data/sample_data/grace_hopper.jpg \
  --description 'any image: pan with arrows/WASD' > results/v4/${N}_export.log 2>&1; fi
nice -n 5 taskset -c $CORE $W eval --world $EXP --stability recordings/pan64_v4_heldout --hold left --camera recordings/pan64_v2_camera \
  --starts 3 --clips 8 --clip-len 17 --out results/v4/${N}.json > results/v4/${N}.log 2>&1
.venv/bin/python -m experiments.stability_table results/v4/${N}.json
.venv/bin/python -c "import json; c=json.load(open('results/v4/${N}.json'))['camera']; print('direction', c['direction_accuracy_moving'], 'revisit', c['revisit_psnr'])"
echo "done $(date)"
