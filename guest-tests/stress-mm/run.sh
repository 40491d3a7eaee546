#!/bin/sh
# kto composed mm stress: CPU hotplug loop + KVM mmu-notifier storm + mm churn, all at once
# for one duration (the helpers of the hotplug, kvm-mmu-notifier and mm-churn tests, which
# are in the same initramfs). Each prints its own result line; any failure fails the test.
duration=30
mode=random
seed=
for a in "$@"; do
	case $a in
	duration=*) duration=${a#duration=} ;;
	mode=*) mode=${a#mode=} ;;
	seed=*) seed=${a#seed=} ;;
	esac
done
../hotplug/hotplug duration="$duration" mode="$mode" seed="$seed" &
hp=$!
../kvm-mmu-notifier/kvm duration="$duration" &
kvm=$!
../mm-churn/churn duration="$duration" &
churn=$!
rc=0
for p in $hp $kvm $churn; do
	wait "$p" || rc=1
done
exit $rc
