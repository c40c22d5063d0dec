#!/usr/bin/env bash
# Idle cost of the dashboard: 20 idle local VMs in a 120x40 terminal, then 10 s of
# nothing. Prints CPU time and context switches (wake-ups) of the bioxen process and
# of its 20 interpreters. Usage: benches/idle.sh [path/to/bioxen]
set -euo pipefail
BIN=${1:-target/release/bioxen}
BIN=$(realpath "$BIN")
SOCK=bioxen-idle-$$
DIR=$(mktemp -d)
trap 'tmux -L $SOCK kill-server 2>/dev/null; rm -rf "$DIR"' EXIT
tmux -L $SOCK -f /dev/null new-session -d -x 120 -y 40 \
  "cd $DIR && XDG_STATE_HOME=$DIR XDG_RUNTIME_DIR=$DIR $BIN"
sleep 1
for i in $(seq 1 20); do
  tmux -L $SOCK send-keys c; sleep 0.15
  tmux -L $SOCK send-keys Enter; sleep 0.3
  tmux -L $SOCK send-keys C-b d; sleep 0.15
done
PID=$(pgrep -f "^$BIN\$" | head -1)
KIDS=$(pgrep -P "$PID" | tr '\n' ' ')
echo "bioxen pid $PID with $(echo $KIDS | wc -w) VMs"
sleep 3
# CPU time in nanoseconds, summed over threads (schedstat is exact, unlike clock ticks).
ticks() { cat /proc/$1/task/*/schedstat | awk '{s+=$1} END {print s}'; }
ctx() { cat /proc/$1/task/*/status | awk '/ctxt_switches/ {s+=$2} END {print s}'; }
kids_ticks() { local s=0; for k in $KIDS; do s=$((s + $(ticks $k))); done; echo $s; }
T0=$(ticks $PID); C0=$(ctx $PID); K0=$(kids_ticks)
sleep 10
T1=$(ticks $PID); C1=$(ctx $PID); K1=$(kids_ticks)
echo "bioxen: $(awk "BEGIN {printf \"%.1f ms CPU in 10 s = %.3f%% of a core\", ($T1-$T0)/1e6, ($T1-$T0)/1e9/10*100}")"
echo "bioxen: $(awk "BEGIN {printf \"%.1f\", ($C1-$C0)/10}") context switches per second (all threads)"
echo "20 idle interpreters: $(awk "BEGIN {printf \"%.1f\", ($K1-$K0)/1e6}") ms CPU in 10 s"
tmux -L $SOCK capture-pane -p | sed -n 1,4p
