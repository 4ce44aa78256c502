package procs

import "syscall"

// Kill sends SIGKILL to the process alone (kill -9: a crash, no goodbye)
// and waits until it has exited. Stop later only reaps the rest of its
// group, if any.
func (p *Proc) Kill() {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}
