package dispatch

import (
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Defaults of a Request.
const (
	// DefaultFanout is xCAT's and ClusterShell's: 64 nodes at once (the
	// CLI also reads DSH_FANOUT).
	DefaultFanout = 64
	// DefaultConnectTimeout bounds reaching a node and logging in.
	DefaultConnectTimeout = 10 * time.Second
	// MaxFanout bounds Fanout (each slot holds one TCP connection).
	MaxFanout = 4096
)

// Kind says which key a target accepts: compute nodes take the compute
// key (then the pool key), pool members only the pool key.
type Kind string

const (
	// KindNode is a compute node.
	KindNode Kind = "node"
	// KindMember is an MN or SN of the pool.
	KindMember Kind = "member"
)

// Target is one host to run on.
type Target struct {
	// Name is the node or member name, as printed before its output.
	Name string `json:"name"`
	// Addr is HOST:PORT to connect to.
	Addr string `json:"addr"`
	// Kind selects the credentials.
	Kind Kind `json:"kind"`
}

// Request is what to run on every target.
type Request struct {
	// Command is the command line, run by the target's login shell (as
	// with ssh HOST COMMAND). Ignored when Script is set.
	Command string `json:"command,omitempty"`
	// Script (xdsh -e) is copied to each target into a temporary file,
	// made executable and run with Args, so its #! line is honoured; the
	// file is removed afterwards.
	Script []byte   `json:"script,omitempty"`
	Args   []string `json:"args,omitempty"`
	// Env is exported before the command (xdsh -E). Names are shell
	// variable names; values are quoted.
	Env map[string]string `json:"env,omitempty"`
	// User to log in as (empty: root).
	User string `json:"user,omitempty"`
	// Fanout is the number of targets run at once (0: DefaultFanout).
	// A member that relays applies the same fanout to its own targets.
	Fanout int `json:"fanout,omitempty"`
	// ConnectTimeout bounds reaching a target and logging in (0:
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration `json:"connect_timeout,omitempty"`
	// CommandTimeout bounds each target's whole run, login included (0:
	// none, as in xCAT).
	CommandTimeout time.Duration `json:"command_timeout,omitempty"`
	// Stream hands output to Handlers.Output line by line as it arrives
	// (xdsh -s); the Results then carry no output.
	Stream bool `json:"stream,omitempty"`
}

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// userRE is what Request.User may be: a POSIX login name.
var userRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,31}$`)

// Validate checks the request and fills in defaults.
func (r *Request) Validate() error {
	if r.Fanout == 0 {
		r.Fanout = DefaultFanout
	}
	if r.Fanout < 1 || r.Fanout > MaxFanout {
		return errorf(ErrInvalid, "fanout %d (allowed: 1 to %d)", r.Fanout, MaxFanout)
	}
	if r.ConnectTimeout == 0 {
		r.ConnectTimeout = DefaultConnectTimeout
	}
	if r.ConnectTimeout < 0 || r.CommandTimeout < 0 {
		return errorf(ErrInvalid, "timeouts must not be negative (connect %s, command %s)", r.ConnectTimeout, r.CommandTimeout)
	}
	if r.User != "" && !userRE.MatchString(r.User) {
		return errorf(ErrInvalid, "user %q (allowed: a login name of letters, digits, '_', '.', '-')", r.User)
	}
	if len(r.Script) == 0 && strings.TrimSpace(r.Command) == "" {
		return errorf(ErrInvalid, "no command and no script given")
	}
	if len(r.Script) == 0 && len(r.Args) > 0 {
		return errorf(ErrInvalid, "arguments %q are for a script, and no script is given", r.Args)
	}
	for k := range r.Env {
		if !envNameRE.MatchString(k) {
			return errorf(ErrInvalid, "environment variable name %q (allowed: letters, digits and '_', not starting with a digit)", k)
		}
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// scriptRunner copies its stdin to a temporary file and executes it.
const scriptRunner = `t=$(mktemp "${TMPDIR:-/tmp}/mnpool-xdsh.XXXXXX") || exit 126
trap 'rm -f "$t"' EXIT
cat >"$t" && chmod 700 "$t" || exit 126
"$t"`

// RemoteCommand returns the command line sent to each target and what
// goes on its stdin. A plain command is sent as is; with Env or Script it
// is wrapped in /bin/sh -c so the wrapper works under any login shell.
// Without a script the command's stdin is empty (it reads end of file).
func (r *Request) RemoteCommand() (cmd string, stdin []byte) {
	var b strings.Builder
	keys := make([]string, 0, len(r.Env))
	for k := range r.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString("export " + k + "=" + shellQuote(r.Env[k]) + "\n")
	}
	if len(r.Script) > 0 {
		b.WriteString(scriptRunner)
		for _, a := range r.Args {
			b.WriteString(" " + shellQuote(a))
		}
		b.WriteString(" </dev/null\n")
		return "exec /bin/sh -c " + shellQuote(b.String()), r.Script
	}
	if len(keys) == 0 {
		return r.Command, nil
	}
	b.WriteString(r.Command)
	return "exec /bin/sh -c " + shellQuote(b.String()), nil
}

// Result is the outcome on one target.
type Result struct {
	Node string `json:"node"`
	Kind Kind   `json:"kind"`
	// Via is the member the target was relayed through ("" when run
	// from here); for several hops, the first.
	Via string `json:"via,omitempty"`
	// Stdout and Stderr are the whole output (nil with Request.Stream).
	Stdout []byte `json:"-"`
	Stderr []byte `json:"-"`
	// ExitCode is the command's exit status; -1 when it did not run to
	// an exit status (Err says why).
	ExitCode int `json:"exit_code"`
	// Err is why the target could not run the command (unreachable, host
	// key, timeout); nil when it ran, whatever its exit status.
	Err error `json:"-"`
	// Elapsed is the time from the start of the connection to the end.
	Elapsed time.Duration `json:"-"`
}

// OK reports whether the command ran and exited 0.
func (r Result) OK() bool { return r.Err == nil && r.ExitCode == 0 }

// resultJSON is the wire and --json form of Result.
type resultJSON struct {
	Node      string  `json:"node"`
	Kind      Kind    `json:"kind"`
	Via       string  `json:"via,omitempty"`
	Stdout    string  `json:"stdout"`
	Stderr    string  `json:"stderr"`
	ExitCode  int     `json:"exit_code"`
	Error     string  `json:"error,omitempty"`
	ErrorKind string  `json:"error_kind,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// MarshalJSON writes the output as text and the error as its message and
// kind (connect, hostkey, timeout, relay, ...).
func (r Result) MarshalJSON() ([]byte, error) {
	j := resultJSON{Node: r.Node, Kind: r.Kind, Via: r.Via, Stdout: string(r.Stdout), Stderr: string(r.Stderr),
		ExitCode: r.ExitCode, Seconds: r.Elapsed.Seconds()}
	if r.Err != nil {
		j.Error, j.ErrorKind = r.Err.Error(), errKind(r.Err)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote; the error keeps its kind
// for errors.Is.
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{Node: j.Node, Kind: j.Kind, Via: j.Via, ExitCode: j.ExitCode,
		Elapsed: time.Duration(j.Seconds * float64(time.Second))}
	if j.Stdout != "" {
		r.Stdout = []byte(j.Stdout)
	}
	if j.Stderr != "" {
		r.Stderr = []byte(j.Stderr)
	}
	if j.Error != "" {
		r.Err = remoteError{msg: j.Error, kind: kindErr(j.ErrorKind)}
	}
	return nil
}

// remoteError is an error that came back from a relaying member.
type remoteError struct {
	msg  string
	kind error
}

func (e remoteError) Error() string { return e.msg }

// remoteErr rebuilds an error a relaying member sent: an *Error when its
// kind is known (the member sent the message without the package tag).
func remoteErr(msg string, kind error) error {
	if kind != nil {
		return &Error{Kind: kind, Msg: msg}
	}
	return remoteError{msg: msg}
}
func (e remoteError) Is(target error) bool {
	return e.kind != nil && errors.Is(e.kind, target)
}

// Summary counts the results of a run.
type Summary struct {
	Total int `json:"total"`
	OK    int `json:"ok"`
	// Failed ran and exited non-zero.
	Failed int `json:"failed"`
	// Unreachable did not run (Result.Err set).
	Unreachable int           `json:"unreachable"`
	Elapsed     time.Duration `json:"-"`
	Seconds     float64       `json:"seconds"`
}

func (s *Summary) add(r Result) {
	s.Total++
	switch {
	case r.Err != nil:
		s.Unreachable++
	case r.ExitCode != 0:
		s.Failed++
	default:
		s.OK++
	}
}
