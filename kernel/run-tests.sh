#!/bin/sh
# Boots each kernel test under QEMU (TCG) and checks its exit status. A test
# passes only if the kernel wrote EXIT_PASS to isa-debug-exit (status 33):
# a hang (killed by the timeout), a triple fault (-no-reboot exits 0) or a
# failed check all count as failures. Logs go to build/kernel/logs/.
dir=$(cd "$(dirname "$0")" && pwd)
img="$dir/x86pt-kernel.elf32"
# A private directory per run (the build tree may be shared by several people
# running make test at once), renamed to logs/ at the end.
logs=$(mktemp -d "$dir/run.XXXXXX")
QEMU=${QEMU:-qemu-system-x86_64}
TIMEOUT=${KERNEL_TIMEOUT:-30}
passed=0
failed=0

if ! command -v "$QEMU" >/dev/null 2>&1; then
    echo "kernel: $QEMU not found (Debian package qemu-system-x86)"
    echo "kernel: 0 passed, 1 failed"
    exit 1
fi

# boot NAME ACCEL CPU-OPTIONS APPEND [EXTRA-QEMU-ARGS...]
# With $want set, the log must also contain a line starting with it.
boot() {
    name=$1 accel=$2 cpu=$3 append=$4
    shift 4
    start=$(date +%s.%N)
    timeout -k 5 "$TIMEOUT" "$QEMU" -machine pc -accel "$accel" -cpu "$cpu" -smp 4 -m 2048 -nic none \
        -display none -monitor none -serial stdio -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=4 \
        -kernel "$img" -append "$append" "$@" >"$logs/$name.log" 2>&1
    status=$?
    secs=$(awk "BEGIN { print $(date +%s.%N) - $start }")
    grep -E '^(shootdown-stress|stale-|mmu-oracle|FAIL|PANIC)' "$logs/$name.log" | sed "s/^/  $name: /"
    if [ "$status" -eq 33 ] && [ -n "$want" ] && ! grep -q "^$want" "$logs/$name.log"; then
        status=missing
    fi
    if [ "$status" = 33 ]; then
        passed=$((passed + 1))
        printf 'kernel test %-10s PASS (%.2fs)\n' "$name" "$secs"
    else
        failed=$((failed + 1))
        case $status in
        124|137) why="timed out after ${TIMEOUT}s" ;;
        0) why="no exit code (triple fault?)" ;;
        missing) why="passed without printing '$want'" ;;
        *) why="exit status $status" ;;
        esac
        printf 'kernel test %-10s FAIL: %s (%.2fs), log %s\n' "$name" "$why" "$secs" "$dir/logs/$name.log"
        tail -n 20 "$logs/$name.log" | sed 's/^/    /'
    fi
}

boot basic tcg max "test=basic cpus=4"
boot attrs tcg max "test=attrs cpus=4"
boot faults tcg max "test=faults cpus=4"
# Round-robin TCG: one host thread runs the 4 vCPUs in turn, switching at each
# PAUSE (test_stress.c says why). Multi-threaded TCG works too but with 4 vCPU
# threads spinning on a 2-core host a shootdown takes ~25 ms:
#   KERNEL_STRESS_MT=1 adds a short run with -accel tcg,thread=multi.
want="shootdown-stress: " boot stress tcg,thread=single max "test=stress cpus=4"
if [ -n "$KERNEL_STRESS_MT" ]; then
    want="shootdown-stress: " boot stress-mt tcg,thread=multi max "test=stress cpus=4 ops=300 control-ops=0"
fi

# The MMU oracle at two MAXPHYADDR widths: tables and the model's predictions
# made on the host (oracle-gen), loaded at 256 MiB, probed by the kernel.
for bits in 40 52; do
    seed=${ORACLE_SEED:-$bits}
    blob="$logs/oracle-$bits.bin"
    if "$dir/oracle-gen" "$bits" "$seed" "$blob" >"$logs/oracle-gen-$bits.log" 2>&1; then
        want="mmu-oracle: phys-bits=$bits " boot "oracle-$bits" tcg "max,phys-bits=$bits" "test=oracle cpus=1" \
            -device "loader,file=$blob,addr=0x10000000,force-raw=on"
    else
        failed=$((failed + 1))
        echo "kernel test oracle-$bits FAIL: oracle-gen failed"
        cat "$logs/oracle-gen-$bits.log"
    fi
done

rm -f "$logs"/*.bin
rm -rf "$dir/logs" && mv "$logs" "$dir/logs"
logs="$dir/logs"
echo "kernel: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
