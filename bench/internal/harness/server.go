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
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Build compiles a main package of the module (for example
// "./cmd/ircam-auth") into dir and returns the binary's path. overlay, when
// not empty, is passed as go build -overlay (the bench's pprof build).
func Build(dir, pkg, name, overlay string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, name)
	args := []string{"build", "-o", out}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}

// ModuleRoot is the directory of the module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the ircam-auth module")
	}
	return filepath.Dir(mod), nil
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
	Cmd     *exec.Cmd
	Started time.Time // just before the process was started
	Ready   time.Time // when it printed its "ready:" line
	done    chan struct{}
	waitErr error
	logFile *os.File
}

// Options say how to start a server.
type Options struct {
	Args    []string  // flags; --listen and --ldap-listen are added when absent
	Env     []string  // extra environment, KEY=VALUE
	Log     io.Writer // the server's stderr; nil: a temporary file
	Timeout time.Duration
}

// Start starts bin and returns once it printed "ready: <url>/healthz" on
// stdout, as ircam-auth and the bare server do. It does not wait for
// /healthz: WaitHealthy does.
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
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), o.Env...)
	s := &Server{Cmd: cmd, done: make(chan struct{})}
	if o.Log != nil {
		cmd.Stderr = o.Log
	} else {
		f, err := os.CreateTemp("", "ircam-auth-bench-*.log")
		if err != nil {
			return nil, err
		}
		s.logFile, cmd.Stderr = f, f
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
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
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(line, "ready: "); ok && !sent {
				ready <- strings.TrimSuffix(strings.TrimSpace(u), "/healthz")
				sent = true
			}
		}
		io.Copy(io.Discard, stdout)
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
		s.cleanup()
		return nil, fmt.Errorf("%s exited before it was ready: %v%s", bin, s.waitErr, s.logTail())
	case <-time.After(o.Timeout):
		s.Stop()
		return nil, fmt.Errorf("%s: not ready after %v%s", bin, o.Timeout, s.logTail())
	}
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
func (s *Server) PID() int { return s.Cmd.Process.Pid }

// Stop sends SIGTERM and waits (SIGKILL after 10 s).
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	defer s.cleanup()
	select {
	case <-s.done:
		return nil
	default:
	}
	s.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.Cmd.Process.Kill()
		<-s.done
	}
	return nil
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
