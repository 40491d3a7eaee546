#!/bin/sh
# kto KVM mmu-notifier storm: arguments (duration=) go to ./kvm, which prints the result
# line (SKIP with the reason when the guest has no KVM).
ls -l /dev/kvm 2>&1 | sed 's/^/kvm-mmu-notifier: /'
exec ./kvm "$@"
