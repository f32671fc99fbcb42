// Package harness starts the ircam-auth binary (or the bare limit server)
// as a real process on loopback, and drives it as OAuth2 clients do: the
// token grants, introspection, the profile, and the whole authorization
// code flow with a cookie jar. The benchmarks and the bench tool share it.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Build compiles a main package of the module, named by its import path
// (for example "github.com/ircam/ircam-auth/cmd/ircam-auth", which go
// build finds from any directory of the module), into dir and returns the
// binary's path.
func Build(dir, pkg string) (string, error) {
	out := filepath.Join(dir, path.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// FreeAddr returns a loopback host:port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Server is a running server process.
type Server struct {
	URL     string // http://127.0.0.1:port
	cmd     *exec.Cmd
	Started time.Time // just before the process was started
	Ready   time.Time // when it printed its "ready:" line
	done    chan struct{}
	waitErr error
	logFile *os.File
}

// Options say how to start a server.
type Options struct {
	Args []string // flags; --listen and --ldap-listen are added when absent
	Env  []string // extra environment, KEY=VALUE
}

// startTimeout bounds the wait for the "ready:" line, and StartHealthy's
// wait for /healthz.
const startTimeout = 30 * time.Second

// Start starts bin and returns once it printed "ready: <url>/healthz" on
// stdout, as ircam-auth and the bare server do. Its stderr goes to a
// temporary file, shown when it fails to start. It does not wait for
// /healthz: WaitHealthy does (StartHealthy does both).
func Start(bin string, o Options) (*Server, error) {
	args := append([]string(nil), o.Args...)
	if !hasFlag(args, "--listen") {
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		args = append(args, "--listen", addr)
	}
	if !hasFlag(args, "--ldap-listen") {
		// Port 0: the embedded directory picks a free port itself (the
		// bare server accepts the flag and ignores it).
		args = append(args, "--ldap-listen", "127.0.0.1:0")
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	f, err := os.CreateTemp("", "ircam-auth-bench-*.log")
	if err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, done: make(chan struct{}), logFile: f}
	cmd.Stderr = f
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.Started = time.Now()
	if err := cmd.Start(); err != nil {
		s.cleanup()
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "ready: "); ok {
				ready <- strings.TrimSuffix(strings.TrimSpace(u), "/healthz")
				break
			}
		}
		io.Copy(io.Discard, stdout) // the server must never block on stdout
	}()
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	select {
	case u := <-ready:
		s.Ready = time.Now()
		s.URL = u
		return s, nil
	case <-s.done:
		tail := s.logTail() // before cleanup removes the log
		s.cleanup()
		return nil, fmt.Errorf("%s exited before it was ready: %v%s", bin, s.waitErr, tail)
	case <-time.After(startTimeout):
		tail := s.logTail()
		s.Stop()
		return nil, fmt.Errorf("%s: not ready after %v%s", bin, startTimeout, tail)
	}
}

// StartHealthy is Start, then WaitHealthy (polling every millisecond): a
// server ready for requests, its embedded directory included.
func StartHealthy(bin string, o Options) (*Server, error) {
	s, err := Start(bin, o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := WaitHealthy(ctx, s.URL, time.Millisecond); err != nil {
		err = fmt.Errorf("%w%s", err, s.logTail())
		s.Stop()
		return nil, err
	}
	return s, nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// WaitHealthy polls GET /healthz every interval until it answers 200.
// cmd/ircam-auth's "healthcheck --wait" does the same from a shell, but
// polls every 200 ms and is a process of its own: too coarse a clock for
// tool startup, which polls every 500 µs.
func WaitHealthy(ctx context.Context, base string, interval time.Duration) error {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for {
		resp, err := c.Get(base + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s/healthz: no 200: %v", base, ctx.Err())
		case <-time.After(interval):
		}
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop sends SIGTERM and waits (SIGKILL after 10 s). A nil server is
// already stopped.
func (s *Server) Stop() {
	if s == nil {
		return
	}
	defer s.cleanup()
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *Server) cleanup() {
	if s.logFile != nil {
		s.logFile.Close()
		os.Remove(s.logFile.Name())
		s.logFile = nil
	}
}

func (s *Server) logTail() string {
	if s.logFile == nil {
		return ""
	}
	b, _ := os.ReadFile(s.logFile.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}

// Memory is what /proc/<pid>/status says of a process's memory, in KiB.
type Memory struct {
	RSS, HWM int64 // VmRSS, VmHWM (peak RSS)
}

// ReadMemory reads VmRSS and VmHWM of pid (Linux only).
func ReadMemory(pid int) (Memory, error) {
	if runtime.GOOS != "linux" {
		return Memory{}, errors.New("memory figures need Linux's /proc")
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v int64
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &v)
			m.RSS = v
		case strings.HasPrefix(line, "VmHWM:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmHWM:"), "%d", &v)
			m.HWM = v
		}
	}
	return m, sc.Err()
}
