#!/usr/bin/env bash
# cli_view.sh — `headscope view` end to end: headless screenshots of all five views on the planted
# model's run (+ the synthetic weight-pass reports in tests/fixtures/viewer), bad input (exit 2 and
# one stderr line), and the real window under Xvfb driven two ways:
#   1. xdotool key presses through the X server (XTEST), as a person would type;
#   2. the hidden --script option (events pushed into SDL's queue), including a mouse click.
# Each interactive run writes its final state (--state-out) and the test checks the selection moved.
# Under SAN=1 (HS=bin/headscope-san) LSan reads tests/lsan_viz.supp (libdbus/libX11 keep
# process-lifetime allocations) and the window uses SDL's software renderer (see that file).
set -u
HS=${HS:-bin/headscope}
FX=tests/fixtures/viewer
pass=0; fail=0; skip=0
ok()  { pass=$((pass+1)); echo "  ok    $1"; }
bad() { fail=$((fail+1)); echo "  FAIL  $1"; [ -n "${2:-}" ] && echo "        ${2:0:400}"; }
skp() { skip=$((skip+1)); echo "  skip  $1"; }
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan_viz.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
tmp=$(mktemp -d); xpid=; vpid=
cleanup() { [ -n "$vpid" ] && kill "$vpid" 2>/dev/null; [ -n "$xpid" ] && kill "$xpid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
png_size() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); assert d[:8]==b"\x89PNG\r\n\x1a\n"; print("%dx%d" % struct.unpack(">II", d[16:24]))' "$1" 2>/dev/null; }
state() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(" ".join(str(s[k]) for k in sys.argv[2:]))' "$@" 2>/dev/null; }
expect_bad() {   # DESCRIPTION PATTERN CMD...: exit 2 and exactly one stderr line matching PATTERN
  local what="$1" pat="$2"; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -eq 2 ] && [ "$(grep -c '' "$tmp/err")" -eq 1 ] && grep -qiE -- "$pat" "$tmp/err"; then ok "bad input: $what -> exit 2: $(cat "$tmp/err")"
  else bad "bad input: $what (rc=$rc)" "$(cat "$tmp/err")"; fi
}

# ---------------------------------------------------------------- a planted run with reports
$HS plant --out "$tmp/p" >/dev/null 2>&1 && \
$HS capture "$tmp/p" --prompts datasets/demo_prompts.txt --db "$tmp/p.db" --hooks hook_pattern --quiet >/dev/null 2>&1 && \
$HS analyze sinks --db "$tmp/p.db" >/dev/null 2>&1 && $HS analyze detectors --db "$tmp/p.db" >/dev/null 2>&1 \
  && ok "planted run: plant, capture (patterns), sinks, detectors" || { bad "planted run"; echo "$pass passed, $fail failed, $skip skipped"; exit 1; }
R="--report $FX/maps.json --report $FX/svd.json --report $FX/composition.json --report $FX/spectra.json"

# ---------------------------------------------------------------- headless
for v in grid head:0.1:0 spectra:1.2 maps composition; do
  f="$tmp/shot-${v//[:.]/_}.png"
  t0=$(date +%s%N)
  if $HS view "$tmp/p.db" $R --view "$v" --metric alpha_0 --size 800x500 --screenshot "$f" 2>"$tmp/err" && [ "$(png_size "$f")" = 800x500 ]; then
    ok "headless --view $v: 800x500 PNG, $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(stat -c %s "$f") bytes"
  else bad "headless --view $v" "$(cat "$tmp/err")"; fi
done
SDL_VIDEODRIVER=dummy DISPLAY= $HS view "$tmp/p.db" --screenshot "$tmp/dummy.png" >/dev/null 2>&1 && [ "$(png_size "$tmp/dummy.png")" = 1280x800 ] \
  && ok "headless with SDL_VIDEODRIVER=dummy and no DISPLAY: default 1280x800" || bad "headless under the dummy driver"
$HS view "$tmp/p.db" --view maps --screenshot "$tmp/empty.png" 2>"$tmp/err" && [ -s "$tmp/empty.png" ] \
  && ok "no maps report: the maps view renders its empty state (exit 0)" || bad "maps empty state" "$(cat "$tmp/err")"

# ---------------------------------------------------------------- a reader while a capture writes
python3 -c 'import random; r=random.Random(1); print("\n".join(" ".join(r.choice(["the","a","head","token","attends","to"]) for _ in range(40)) for _ in range(400)))' > "$tmp/many.txt"
$HS capture "$tmp/p" --prompts "$tmp/many.txt" --db "$tmp/live.db" --hooks hook_pattern --layers 0 --quiet >/dev/null 2>"$tmp/cap.err" & cpid=$!
for i in $(seq 100); do [ -s "$tmp/live.db" ] && sqlite3 -readonly "$tmp/live.db" "select count(*) from prompts" 2>/dev/null | grep -qv '^0$' && break; sleep 0.05; done
live_ok=0
for i in 1 2 3; do $HS view "$tmp/live.db" --view head:0.1 --size 640x400 --screenshot "$tmp/live$i.png" 2>>"$tmp/live.err" && live_ok=$((live_ok+1)); done
running=$(kill -0 $cpid 2>/dev/null && echo "still running" || echo "finished")
wait $cpid; crc=$?
n=$(sqlite3 -readonly "$tmp/live.db" "select count(*) from prompts")
[ $live_ok -eq 3 ] && [ $crc -eq 0 ] && [ "$n" = 400 ] && ok "3 headless views of a run while its capture writes (capture $running after them, then 400/400 prompts, exit 0)" \
  || bad "viewer during a capture (views ok: $live_ok/3, capture rc=$crc, prompts=$n)" "$(cat "$tmp/live.err" "$tmp/cap.err")"

# ---------------------------------------------------------------- bad input
expect_bad "no database" "needs a run database" $HS view
expect_bad "bad --view" "bad --view" $HS view "$tmp/p.db" --view head:zz --screenshot "$tmp/x.png"
expect_bad "head out of range" "not in the model" $HS view "$tmp/p.db" --view head:5.0 --screenshot "$tmp/x.png"
expect_bad "prompt out of range" "not in run" $HS view "$tmp/p.db" --view head:0.1:77 --screenshot "$tmp/x.png"
expect_bad "unknown metric" "no metric" $HS view "$tmp/p.db" --metric frobnicate --screenshot "$tmp/x.png"
expect_bad "bad --size" "--size" $HS view "$tmp/p.db" --size 12 --screenshot "$tmp/x.png"
expect_bad "unknown option" "unexpected argument" $HS view "$tmp/p.db" --frob
head -c 300 $FX/spectra.json > "$tmp/broken.json"
expect_bad "truncated --report" "not valid JSON" $HS view "$tmp/p.db" --report "$tmp/broken.json" --screenshot "$tmp/x.png"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["matrices"][2]["hist"]["counts"].pop(); json.dump(d, open(sys.argv[2],"w"))' $FX/spectra.json "$tmp/bins.json"
expect_bad "report with hist edges != counts + 1" "matrices\[2\]\.hist" $HS view "$tmp/p.db" --report "$tmp/bins.json" --screenshot "$tmp/x.png"
expect_bad "a window without a display" "no display" env -u DISPLAY -u WAYLAND_DISPLAY -u SDL_VIDEODRIVER $HS view "$tmp/p.db"
echo "not a database" > "$tmp/text.db"
expect_bad "a text file as RUN.db" "not a" $HS view "$tmp/text.db" --screenshot "$tmp/x.png"
expect_bad "missing RUN.db" "cannot open" $HS view "$tmp/none.db" --screenshot "$tmp/x.png"
HEADSCOPE_FONT=/nonexistent.ttf $HS view "$tmp/p.db" --screenshot "$tmp/x.png" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "HEADSCOPE_FONT" "$tmp/err" && ok "missing font: exit 2: $(cat "$tmp/err")" || bad "missing font" "$(cat "$tmp/err")"

# ---------------------------------------------------------------- the window under Xvfb
if ! command -v Xvfb >/dev/null; then skp "Xvfb not installed (scripts/install-deps.sh installs xvfb)"; echo "$pass passed, $fail failed, $skip skipped"; [ $fail -eq 0 ]; exit; fi
for n in $(seq $((90 + RANDOM % 400)) 600); do [ -e /tmp/.X11-unix/X$n ] || [ -e /tmp/.X$n-lock ] || { D=:$n; break; }; done
Xvfb "$D" -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 & xpid=$!
export DISPLAY=$D
for i in $(seq 50); do xdpyinfo >/dev/null 2>&1 || [ -e "/tmp/.X11-unix/X${D#:}" ] && break; sleep 0.1; done
unset SDL_VIDEODRIVER
case "$HS" in *-san)   # see tests/lsan_viz.supp: keep Mesa (dlclosed at exit, unnameable by LSan) out of SAN runs
  export SDL_RENDER_DRIVER=software SDL_FRAMEBUFFER_ACCELERATION=0 ;;
esac

wait_exit() {   # PID SECONDS: wait for a process, kill it after SECONDS
  local p=$1 s=$2 i
  for i in $(seq $((s * 10))); do kill -0 "$p" 2>/dev/null || { wait "$p"; return $?; }; sleep 0.1; done
  kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; return 124
}

# 1. xdotool: real X key events, focused on the viewer's window
if command -v xdotool >/dev/null; then
  mkdir -p "$tmp/shots"
  HEADSCOPE_SHOT_DIR="$tmp/shots" $HS view "$tmp/p.db" --size 1000x700 --state-out "$tmp/x11.json" 2>"$tmp/x11.err" & vpid=$!
  wid=$(timeout 10 xdotool search --sync --name "headscope view" 2>/dev/null | head -1)
  if [ -n "$wid" ]; then
    sleep 0.5
    xdotool windowfocus --sync "$wid" 2>/dev/null || xdotool windowfocus "$wid"
    sleep 0.2
    for k in Down Right Tab bracketright s; do xdotool key --delay 60 "$k"; sleep 0.15; done
    xdotool mousemove --window "$wid" 300 300 2>/dev/null; sleep 0.2
    xdotool key Escape
    wait_exit $vpid 10; rc=$?; vpid=
    got=$(state "$tmp/x11.json" view layer head prompt)
    shotf=$(ls "$tmp/shots" 2>/dev/null | head -1)
    [ $rc -eq 0 ] && [ "$got" = "head 1 1 1" ] && [ "$(png_size "$tmp/shots/$shotf" 2>/dev/null)" = 1000x700 ] \
      && ok "Xvfb + xdotool: Down Right Tab ] s Esc -> view head, head 1.1, prompt 1 (state: $got), 's' saved $shotf" \
      || bad "Xvfb + xdotool keys (rc=$rc, state: $got)" "$(cat "$tmp/x11.err")"
  else kill $vpid 2>/dev/null; wait $vpid 2>/dev/null; vpid=; bad "Xvfb: the viewer window did not appear" "$(cat "$tmp/x11.err")"; fi
else skp "xdotool not installed: X key events not tested (the --script run below still drives the window)"; fi

# 2. scripted SDL events: keys, a click on the grid's cell 1.2, a resize, a screenshot, quit
cat > "$tmp/script.txt" <<'EOF'
# the grid (default view) at 1000x700 puts its 96-px cells at (272, 80): click the middle of head 1.2, open it
wait 200
key PageDown
click 512 224
key Return
key g
key ]
key shift+Tab
key Tab
wait 100
resize 1100 760
wait 200
screenshot SHOT
key ?
key Escape
quit
EOF
sed -i "s#SHOT#$tmp/script-shot.png#" "$tmp/script.txt"
$HS view "$tmp/p.db" $R --size 1000x700 --metric alpha_0 --script "$tmp/script.txt" --state-out "$tmp/script.json" 2>"$tmp/script.err" & vpid=$!
wait_exit $vpid 20; rc=$?; vpid=
got=$(state "$tmp/script.json" view layer head prompt width height)
[ $rc -eq 0 ] && [ "$got" = "head 1 2 1 1100 760" ] && [ "$(png_size "$tmp/script-shot.png")" = 1100x760 ] \
  && ok "Xvfb + --script: click selects 1.2, Enter opens it, ] next prompt, window resized, screenshot 1100x760 (state: $got)" \
  || bad "Xvfb + --script (rc=$rc, state: $got, shot: $(png_size "$tmp/script-shot.png"))" "$(cat "$tmp/script.err")"

# 3. an unreadable report in a window: the error screen, Esc quits with status 2
printf 'key Escape\n' > "$tmp/esc.txt"
$HS view "$tmp/p.db" --report "$tmp/broken.json" --script "$tmp/esc.txt" --state-out "$tmp/err.json" 2>"$tmp/err.err" & vpid=$!
wait_exit $vpid 10; rc=$?; vpid=
[ $rc -eq 2 ] && [ "$(state "$tmp/err.json" error)" = True ] && ok "window with a corrupt report: error screen, Esc -> exit 2 ($(head -1 "$tmp/err.err"))" \
  || bad "error screen (rc=$rc)" "$(cat "$tmp/err.err")"

echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
