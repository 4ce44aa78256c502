package target

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ClkTck is USER_HZ on Linux: the unit of CPU times in /proc/PID/stat.
const ClkTck = 100

// CPUTicks is the CPU time so far of every process of the server, in
// ClkTck units, summed per program name over each started process group.
func (s *Server) CPUTicks() map[string]int64 {
	out := map[string]int64{}
	for name, pids := range s.groups() {
		for _, pid := range pids {
			out[name] += ticks(pid)
		}
	}
	return out
}

// PeakRSS is the peak resident memory (VmHWM) so far of the server's
// processes in bytes, summed per program name over each process group.
// Pages shared between processes (Kamailio's shared memory, where its
// location table lives) count once in every process that touched them,
// so a sum over Kamailio's processes is an upper bound of its footprint.
func (s *Server) PeakRSS() map[string]int64 {
	out := map[string]int64{}
	for name, pids := range s.groups() {
		for _, pid := range pids {
			out[name] += statusKB(pid, "VmHWM:") * 1024
		}
	}
	return out
}

// groups lists the live processes of each started process group by
// program name.
func (s *Server) groups() map[string][]int {
	byGroup := map[int]string{}
	out := map[string][]int{}
	for _, p := range s.Procs {
		byGroup[p.PID()] = p.Name
		out[p.Name] = nil
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		if name, ok := byGroup[pgrp]; ok {
			out[name] = append(out[name], pid)
		}
	}
	return out
}

// statFields are the fields of /proc/PID/stat after the command name
// (which may hold spaces): state is [0], pgrp [2], utime [11], stime [12].
func statFields(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func ticks(pid int) int64 {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// statusKB is a "kB" line of /proc/PID/status (0 if absent).
func statusKB(pid int, key string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
