package sshkeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/mnpool/mnpool/atomicfile"
)

// LineKind classifies a line of an authorized_keys file.
type LineKind int

const (
	LineBlank   LineKind = iota + 1 // empty or only blanks
	LineComment                     // starts with '#' (markers excepted)
	LineKey                         // a key, possibly with options and a comment
	LineInvalid                     // anything else; sshd ignores it
	LineBegin                       // BeginMarker
	LineEnd                         // EndMarker
)

// String returns a lower-case name for the kind.
func (k LineKind) String() string {
	switch k {
	case LineBlank:
		return "blank"
	case LineComment:
		return "comment"
	case LineKey:
		return "key"
	case LineInvalid:
		return "invalid"
	case LineBegin:
		return "begin"
	case LineEnd:
		return "end"
	}
	return fmt.Sprintf("LineKind(%d)", int(k))
}

// Line is one line of an authorized_keys file.
type Line struct {
	Num     int      // 1-based
	Text    string   // as in the file, without the newline
	Kind    LineKind //
	Managed bool     // inside the mnpool block (markers included)
	Key     ssh.PublicKey
	Options []string // LineKey: the options before the key, e.g. from="10.0.0.0/8"
	Comment string   // LineKey: the text after the key
	Err     error    // LineInvalid: why it does not parse
}

// ReadAuthorizedKeys classifies every line of an authorized_keys file. It
// never fails on a bad line: the line is returned as LineInvalid with Err
// set. The error, wrapping ErrBadBlock, reports unbalanced or repeated
// managed-block markers; the lines are returned even then (none marked
// Managed).
func ReadAuthorizedKeys(data []byte) ([]Line, error) {
	texts := splitLines(data)
	begin, end, blockErr := findBlock(texts)
	out := make([]Line, len(texts))
	for i, t := range texts {
		l := Line{Num: i + 1, Text: t, Managed: begin >= 0 && i >= begin && i <= end}
		trimmed := strings.TrimSpace(t)
		switch {
		case isBegin(t):
			l.Kind = LineBegin
		case isEnd(t):
			l.Kind = LineEnd
		case trimmed == "":
			l.Kind = LineBlank
		case trimmed[0] == '#':
			l.Kind = LineComment
		default:
			l.Key, l.Comment, l.Options, l.Err = parseKeyLine(trimmed)
			l.Kind = LineKey
			if l.Err != nil {
				l.Kind = LineInvalid
			}
		}
		out[i] = l
	}
	return out, blockErr
}

// parseKeyLine parses one non-blank, non-comment authorized_keys line.
func parseKeyLine(line string) (ssh.PublicKey, string, []string, error) {
	if strings.ContainsAny(line, "\n\x00") {
		return nil, "", nil, errors.New("line contains a newline or NUL byte")
	}
	key, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, "", nil, err
	}
	return key, comment, options, nil
}

// AuthorizedKeysSpec says what goes into the managed block of one
// authorized_keys file.
type AuthorizedKeysSpec struct {
	// Target is a member (pool keys only) or a compute node (compute keys
	// and pool keys).
	Target Target
	// Name of the member or node, written in the block's first comment.
	// Optional; [A-Za-z0-9._-] only.
	Name string
	// Keys from LoadPublicKeys. Both kinds are required: a member's file is
	// cleaned of compute keys, so they must be known even there.
	Keys PublicKeys
	// Extra are further authorized_keys lines the administrator lists (an
	// admin workstation's key, say), options allowed. They are validated, a
	// compute key among them is refused for a member, and they are written
	// sorted after the mnpool keys.
	Extra []string
}

func (s AuthorizedKeysSpec) validate() ([]string, error) {
	if err := s.Target.valid(); err != nil {
		return nil, err
	}
	if s.Name != "" {
		if err := validName(s.Name); err != nil {
			return nil, err
		}
	}
	if len(s.Keys.Pool) == 0 || len(s.Keys.Compute) == 0 {
		return nil, fmt.Errorf("%w: spec has %d pool and %d compute keys (want at least one of each)", ErrNotInitialized, len(s.Keys.Pool), len(s.Keys.Compute))
	}
	for _, p := range s.Keys.Pool {
		if containsKey(s.Keys.Compute, p) {
			return nil, fmt.Errorf("%w: %s", ErrSameKey, ssh.FingerprintSHA256(p))
		}
	}
	extra := make([]string, 0, len(s.Extra))
	for i, e := range s.Extra {
		t := strings.TrimSpace(e)
		key, _, _, err := parseKeyLine(t)
		if t == "" || t[0] == '#' || err != nil {
			if err == nil {
				err = errors.New("blank or comment")
			}
			return nil, fmt.Errorf("%w: extra key %d %q: %w", ErrInvalidKey, i+1, shorten(t), err)
		}
		if s.Target == TargetMember && containsKey(s.Keys.Compute, key) {
			return nil, fmt.Errorf("%w: extra key %d is the compute key %s", ErrComputeKeyOnMember, i+1, ssh.FingerprintSHA256(key))
		}
		extra = append(extra, t)
	}
	slices.Sort(extra)
	return slices.Compact(extra), nil
}

// shorten keeps an echoed public key line readable in an error message.
func shorten(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// managedLines is the body of the block: pool keys, then (for a node) compute
// keys, each current then previous, then the extra lines whose key is not
// already there.
func (s AuthorizedKeysSpec) managedLines(extra []string) []string {
	who := "for " + s.Target.String()
	if s.Name != "" {
		who += " " + s.Name
	}
	out := []string{"# Rendered by mnpool " + who + "; lines inside this block are replaced on every render."}
	var have []ssh.PublicKey
	add := func(keys []ssh.PublicKey, kind Kind) {
		for i, k := range keys {
			if containsKey(have, k) {
				continue
			}
			c := keyComment(kind)
			if i > 0 {
				c += "-previous"
			}
			out = append(out, authorizedLine(k, c))
			have = append(have, k)
		}
	}
	add(s.Keys.Pool, KindPool)
	if s.Target == TargetNode {
		add(s.Keys.Compute, KindCompute)
	}
	for _, e := range extra {
		key, _, _, _ := parseKeyLine(e)
		if !containsKey(have, key) {
			out = append(out, e)
			have = append(have, key)
		}
	}
	return out
}

// RenderAuthorizedKeys returns existing (the current content of the file,
// nil if none) with the mnpool block rendered from spec. Lines outside the
// block are kept byte for byte, with one exception: on a member, a
// hand-added line that accepts a compute key is removed, and reported as a
// FindingComputeKeyOnMember (Path empty, Line in existing). Output is
// deterministic. Unbalanced markers in existing are ErrBadBlock and nothing
// is rendered.
func RenderAuthorizedKeys(existing []byte, spec AuthorizedKeysSpec) ([]byte, []Finding, error) {
	extra, err := spec.validate()
	if err != nil {
		return nil, nil, err
	}
	var removed []Finding
	keep := func(i int, line string) bool {
		if spec.Target != TargetMember {
			return true
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			return true
		}
		key, _, _, err := parseKeyLine(t)
		if err != nil || !containsKey(spec.Keys.Compute, key) {
			return true
		}
		removed = append(removed, Finding{
			Kind:    FindingComputeKeyOnMember,
			Line:    i + 1,
			Message: fmt.Sprintf("removed a hand-added line accepting the compute key %s: pool members must not accept it", ssh.FingerprintSHA256(key)),
		})
		return false
	}
	out, err := replaceBlock(existing, spec.managedLines(extra), keep)
	if err != nil {
		return nil, nil, err
	}
	return out, removed, nil
}

// maxAuthorizedKeys bounds the size of an authorized_keys file read here.
const maxAuthorizedKeys = 16 << 20

// UpdateAuthorizedKeysFile renders spec into the file at path, creating it
// (and its directory, mode 0700) if needed. The file is written atomically
// with mode 0600, or keeps 0644 if it had it, and only when its content or
// mode changes. changed reports whether it was written; removed lists
// hand-added compute-key lines removed from a member's file.
func UpdateAuthorizedKeysFile(ctx context.Context, path string, spec AuthorizedKeysSpec) (changed bool, removed []Finding, err error) {
	if err := ctx.Err(); err != nil {
		return false, nil, err
	}
	existing, mode, err := readLimited(path, maxAuthorizedKeys)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, nil, fmt.Errorf("sshkeys: read %s: %w", path, err)
	}
	out, removed, err := RenderAuthorizedKeys(existing, spec)
	if err != nil {
		return false, nil, fmt.Errorf("sshkeys: render %s: %w", path, err)
	}
	for i := range removed {
		removed[i].Path = path
	}
	want := privateMode
	if mode == publicMode {
		want = publicMode
	}
	if bytes.Equal(out, existing) && mode == want {
		return false, removed, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return false, nil, fmt.Errorf("sshkeys: create directory for %s: %w", path, err)
	}
	if _, err := atomicfile.Write(path, out, atomicfile.Options{Mode: want, ForceMode: true}); err != nil {
		return false, nil, fmt.Errorf("sshkeys: write %s: %w", path, err)
	}
	return true, removed, nil
}

// readLimited reads a regular file of at most limit bytes and returns its
// permission bits.
func readLimited(path string, limit int64) ([]byte, fs.FileMode, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file (mode %s)", path, st.Mode())
	}
	if st.Size() > limit {
		return nil, 0, fmt.Errorf("%s is %d bytes, more than the %d allowed", path, st.Size(), limit)
	}
	data, err := os.ReadFile(path)
	return data, st.Mode().Perm(), err
}
