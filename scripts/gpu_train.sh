#!/usr/bin/env bash
# Train the mpnet teacher and distil the MiniLM reader on a GPU machine, in one call.
#
# Runs there, in the repository's root, once every chunk of the bundle made by
# `python scripts/gpu_reader.py pack` has arrived in .gpu/ (docs/training.md, "Training on
# a GPU machine"). Leaves in $OUT: the logs, and the distilled reader cut into returnable
# parts (`python scripts/gpu_reader.py join` puts it back together here).
#
# Knobs (environment): STAGE (all, or teacher then student in two calls: each call is
# limited to 10 minutes; or perturbed: no teacher, the shipped reader continued with
# no-answer twins and perturbed questions, NEGATIVES 0.25, PERTURBED 0.5, PERTURBED_EPOCHS
# 1), BUNDLE (.gpu, where the chunks are), TEACHER_EPOCHS (2),
# STUDENT_EPOCHS (2), BATCH (32), THREADS (16); for a smoke run on any machine:
# MAX_STEPS, LIMIT_EXAMPLES, EVAL_LIMIT (0 = none).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Inside the (ignored) .gpu folder, which the GPU machine keeps between calls.
WORK=${WORK:-.gpu/work}
OUT=${OUT:?set OUT to the folder the results go to}
export PYTHONUNBUFFERED=1

STAGE=${STAGE:-all}
if [ "$STAGE" != student ]; then
    "$PY" scripts/gpu_reader.py unpack --bundle "${BUNDLE:-.gpu}" --dest "$WORK"
fi
# The student's base comes from the bundle: the pip package is not installed there.
export NEWSQA_BASE_DIR="$WORK/minilm"
COMMON=(--data "$WORK/squad/train-v1.1.json.gz" --batch-size "${BATCH:-32}"
        --threads "${THREADS:-16}" --log-every 200 --save-every 1000000
        --max-steps "${MAX_STEPS:-0}" --limit-examples "${LIMIT_EXAMPLES:-0}"
        --eval-limit "${EVAL_LIMIT:-0}")

if [ "$STAGE" = perturbed ]; then
    "$PY" -m qa.train "${COMMON[@]}" --init qa/models/reader --out "$WORK/perturbed" \
        --export-dir "$WORK/reader" --negatives "${NEGATIVES:-0.25}" \
        --perturbed "${PERTURBED:-0.5}" --lr 2e-5 --warmup 0.03 --seed 18 \
        --epochs "${PERTURBED_EPOCHS:-1}" 2>&1 | tee "$OUT/perturbed.log"
    "$PY" scripts/gpu_reader.py split "$WORK/reader" "$OUT/reader"
    exit 0
fi

if [ "$STAGE" != student ]; then
    "$PY" -m qa.train "${COMMON[@]}" --base "$WORK/mpnet" --out "$WORK/teacher" \
        --export-dir "$WORK/teacher/export" --lr 3e-5 --warmup 0.1 --seed 21 \
        --epochs "${TEACHER_EPOCHS:-2}" 2>&1 | tee "$OUT/teacher.log"
fi
[ "$STAGE" = teacher ] && exit 0

"$PY" -m qa.train "${COMMON[@]}" --init qa/models/reader \
    --teacher "$WORK/teacher/export" --out "$WORK/student" --export-dir "$WORK/reader" \
    --lr 3e-5 --warmup 0.02 --seed 17 --epochs "${STUDENT_EPOCHS:-2}" 2>&1 \
    | tee "$OUT/student.log"

"$PY" scripts/gpu_reader.py split "$WORK/reader" "$OUT/reader"
