# usage: [STEPS=n] [TEMP=t] bash experiments/eval_moves.sh doom|pan WORKDIR OUTNAME CORE   (STEPS Euler steps, default 2;
#   TEMP the sampling temperature, default 1; guidance 1)
cd "$(dirname "$0")/.."  # the repository root
K=$1; R=$2; N=$3; CORE=$4; STEPS=${STEPS:-2}; TEMP=${TEMP:-1}; W=.venv/bin/wm; EXP=runs/${N}_world_g1
mkdir -p results/moves
if [ $K = doom ]; then
  [ -d $EXP ] || $W export-world $R --name doom --out $EXP --steps $STEPS --guidance 1 --temperature $TEMP \
    --keys 'w=forward,s=back,left=turn left,right=turn right,a=strafe left,d=strafe right,shift=run,f=fire,e=use' > /dev/null
  taskset -c $CORE .venv/bin/python -m experiments.turn_probe --world $EXP --data recordings/ae/doom64_heldout_MAP04 > results/moves/${N}_turn.txt 2>&1
  tail -n 8 results/moves/${N}_turn.txt
  taskset -c $CORE $W eval --world $EXP --stability recordings/ae/doom64_heldout_MAP04 recordings/ae/doom64_heldout_MAP13 recordings/ae/doom64_heldout_MAP14 \
    --starts 3 --clips 8 --clip-len 17 --out results/moves/${N}.json > results/moves/${N}.log 2>&1
else
  [ -d $EXP ] || $W export-world $R --name pan --out $EXP --steps $STEPS --guidance 1 --temperature $TEMP \
    --keys 'up=pan up,down=pan down,left=pan left,right=pan right,w=pan up,s=pan down,a=pan left,d=pan right,e=zoom in,q=zoom out' > /dev/null
  taskset -c $CORE $W eval --world $EXP --stability recordings/pan64_v2_heldout --hold left --hold e --hold q --camera recordings/pan64_v2_camera \
    --starts 3 --clips 8 --clip-len 17 --out results/moves/${N}.json > results/moves/${N}.log 2>&1
  taskset -c $CORE $W eval --world $EXP --camera recordings/pan64_v2_zoom_script --out results/moves/${N}_zoom.json > results/moves/${N}_zoom.log 2>&1
  .venv/bin/python -c "import json; c=json.load(open('results/moves/${N}_zoom.json'))['camera']; print('zoom', c['zoom']); print({k: (round(v['scale_real'],3), round(v['scale_generated'],3), v.get('direction_accuracy')) for k, v in c['per_key'].items()})"
fi
.venv/bin/python -m experiments.stability_table results/moves/${N}.json
echo "done $(date)"
