package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mnpool/mnpool/dispatch/sshfarm/farmcluster"
)

// gnuTime measures the max RSS of a tool (Debian package time).
const gnuTime = "/usr/bin/time"

func numCPU() int { return runtime.NumCPU() }

// sample is one run of one tool.
type sample struct {
	wall, cpu time.Duration
	rssKB     int64
	lines     int
	load      float64
	exit      int
}

// measure runs argv with env, counts its stdout lines and takes its
// resource usage.
func measure(ctx context.Context, env []string, argv ...string) (sample, error) {
	load := loadavg()
	// GNU time reports the max RSS of the tool itself: a child started
	// straight from this (large) process would inherit its RSS as the
	// floor of ru_maxrss.
	rssFile, err := os.CreateTemp("", "xdshbench-rss-")
	if err != nil {
		return sample{}, err
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	name := argv[0]
	if _, err := os.Stat(gnuTime); err == nil {
		argv = append([]string{gnuTime, "-f", "%M", "-o", rssFile.Name()}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	cmd.Stdin = devnull
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return sample{}, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	lines := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		lines++
	}
	err = cmd.Wait()
	s := sample{wall: time.Since(start), lines: lines, load: load}
	if cmd.ProcessState != nil {
		s.exit = cmd.ProcessState.ExitCode()
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.rssKB = ru.Maxrss
			s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if b, err := os.ReadFile(rssFile.Name()); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 0 {
			if kb, err := strconv.ParseInt(f[len(f)-1], 10, 64); err == nil {
				s.rssKB = kb
			}
		}
	}
	if err != nil && s.exit != 1 {
		return s, fmt.Errorf("%s: %v: %s", name, err, lastLines(stderr.String(), 5))
	}
	fmt.Fprintf(os.Stderr, "%-6s %-40.40s wall %6.2fs cpu %6.2fs rss %6.1f MB lines %d load %.2f\n",
		filepath.Base(name), strings.Join(argv[len(argv)-1:], " "), s.wall.Seconds(), s.cpu.Seconds(), float64(s.rssKB)/1024, s.lines, s.load)
	if s.exit != 0 {
		fmt.Fprintf(os.Stderr, "warning: %s exited %d: %s\n", name, s.exit, lastLines(stderr.String(), 5))
	}
	return s, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], " | ")
}

func loadavg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}

// argv returns the command line of tool for cmd on the cluster.
func argv(cl *farmcluster.Cluster, tool string, fanout, n int, cmd string) ([]string, []string) {
	f := strconv.Itoa(fanout)
	switch tool {
	case "pdsh":
		return []string{"PDSH_SSH_ARGS_APPEND=-F " + cl.SSHConfig}, []string{"pdsh", "-R", "ssh", "-f", f, "-w", "^" + cl.HostsFile, cmd}
	case "clush":
		return nil, []string{"clush", "-f", f, "-o", "-F " + cl.SSHConfig, "--hostfile", cl.HostsFile, cmd}
	}
	a := append([]string{cl.Mnpool}, cl.XdshArgs("mn1")...)
	return nil, append(a, "-f", f, fmt.Sprintf("cn[00001-%05d]", n), "--", cmd)
}

// row summarises the samples of one tool and command.
type row struct {
	tool, cmd, how string
	samples        []sample
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r row) stat(f func(sample) float64) (med, lo, hi float64) {
	var xs []float64
	for _, s := range r.samples {
		xs = append(xs, f(s))
	}
	return median(xs), slices.Min(xs), slices.Max(xs)
}

func printRows(rows []row) {
	fmt.Println("| tool | command | wall median (min-max) s | CPU median s | max RSS median MB | lines | load avg (1 min) at start |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rows {
		w, lo, hi := r.stat(func(s sample) float64 { return s.wall.Seconds() })
		c, _, _ := r.stat(func(s sample) float64 { return s.cpu.Seconds() })
		m, _, _ := r.stat(func(s sample) float64 { return float64(s.rssKB) / 1024 })
		var loads []string
		for _, s := range r.samples {
			mark := ""
			if s.load > 1 {
				mark = "*"
			}
			loads = append(loads, fmt.Sprintf("%.2f%s", s.load, mark))
		}
		fmt.Printf("| %s | `%s` | %.2f (%.2f-%.2f) | %.2f | %.1f | %d | %s |\n", r.tool+r.how, r.cmd, w, lo, hi, c, m, r.samples[0].lines, strings.Join(loads, " "))
	}
	fmt.Println("\n`*` marks runs started at a load average above 1 (busy machine).")
}
