package sshkeys

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// FindingKind is the type of an audit finding, so callers can filter.
type FindingKind int

const (
	FindingUnreadable         FindingKind = iota + 1 // file missing, unreadable, or not a key
	FindingFileMode                                  // file mode not allowed
	FindingOwner                                     // file or directory not owned by the expected user
	FindingDirMode                                   // directory writable by group or others
	FindingBadLine                                   // a line that does not parse as a key
	FindingBadBlock                                  // unbalanced or repeated managed-block markers
	FindingComputeKeyOnMember                        // a member accepts the compute key
	FindingMissingPoolKey                            // the current pool key is not accepted
	FindingMissingComputeKey                         // a node does not accept the current compute key
	FindingSameKey                                   // the pool key equals the compute key
)

var findingNames = map[FindingKind]string{
	FindingUnreadable:         "unreadable",
	FindingFileMode:           "file-mode",
	FindingOwner:              "owner",
	FindingDirMode:            "dir-mode",
	FindingBadLine:            "bad-line",
	FindingBadBlock:           "bad-block",
	FindingComputeKeyOnMember: "compute-key-on-member",
	FindingMissingPoolKey:     "missing-pool-key",
	FindingMissingComputeKey:  "missing-compute-key",
	FindingSameKey:            "same-key",
}

// String returns the kind's name, e.g. "compute-key-on-member".
func (k FindingKind) String() string {
	if n, ok := findingNames[k]; ok {
		return n
	}
	return fmt.Sprintf("FindingKind(%d)", int(k))
}

// ParseFindingKind is the inverse of String, for a CLI filter flag.
func ParseFindingKind(s string) (FindingKind, error) {
	for k, n := range findingNames {
		if n == s {
			return k, nil
		}
	}
	names := make([]string, 0, len(findingNames))
	for _, n := range findingNames {
		names = append(names, n)
	}
	slices.Sort(names)
	return 0, fmt.Errorf("sshkeys: unknown finding kind %q (allowed: %s)", s, strings.Join(names, ", "))
}

// Finding is one problem found by Audit or AuditKeyDir, or one line removed
// by RenderAuthorizedKeys.
type Finding struct {
	Kind    FindingKind
	Path    string // the file or directory concerned
	Line    int    // 1-based; 0 when the finding is about the whole file
	Message string
}

// String formats the finding as "path:line: kind: message" (no line when 0).
func (f Finding) String() string {
	loc := f.Path
	if f.Line > 0 {
		loc = fmt.Sprintf("%s:%d", f.Path, f.Line)
	}
	return fmt.Sprintf("%s: %s: %s", loc, f.Kind, f.Message)
}

// AuditOptions says what the audited files are expected to accept.
type AuditOptions struct {
	// Target: the files belong to members or to compute nodes.
	Target Target
	// Keys from LoadPublicKeys; both kinds are required.
	Keys PublicKeys
	// Owner is the uid that must own the files and their directories; 0,
	// the zero value, is root.
	Owner int
}

// Allowed modes of an authorized_keys file.
const (
	authorizedKeysModes = "0600 or 0644"
	writableByOthers    = 0o022
)

// Audit checks authorized_keys files and reports every violation it finds,
// sorted by path and line: the compute key on a member, a missing pool key
// (and, on a node, a missing compute key), lines that do not parse, broken
// managed-block markers, a file mode other than 0600/0644, a file or
// directory not owned by opts.Owner, and a directory (the file's, and the
// one above it when that one is .ssh) writable by group or others, which
// sshd's StrictModes refuses. A file that cannot be read is a finding, not
// an error; the error is for invalid options or a cancelled ctx.
func Audit(ctx context.Context, opts AuditOptions, paths ...string) ([]Finding, error) {
	if err := opts.Target.valid(); err != nil {
		return nil, err
	}
	if len(opts.Keys.Pool) == 0 || len(opts.Keys.Compute) == 0 {
		return nil, fmt.Errorf("%w: audit options have %d pool and %d compute keys (want at least one of each)", ErrNotInitialized, len(opts.Keys.Pool), len(opts.Keys.Compute))
	}
	var out []Finding
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, auditAuthorizedKeys(p, opts)...)
	}
	return sortFindings(out), nil
}

func auditAuthorizedKeys(path string, opts AuditOptions) []Finding {
	var out []Finding
	add := func(kind FindingKind, p string, line int, format string, args ...any) {
		out = append(out, Finding{Kind: kind, Path: p, Line: line, Message: fmt.Sprintf(format, args...)})
	}
	dirs := []string{filepath.Dir(path)}
	if filepath.Base(dirs[0]) == ".ssh" {
		dirs = append(dirs, filepath.Dir(dirs[0]))
	}
	for _, d := range dirs {
		out = append(out, checkOwnerMode(d, opts.Owner, func(m fs.FileMode) string {
			if m&writableByOthers != 0 {
				return fmt.Sprintf("directory is writable by group or others (mode %04o); sshd's StrictModes refuses keys below it", m)
			}
			return ""
		}, FindingDirMode)...)
	}
	out = append(out, checkOwnerMode(path, opts.Owner, func(m fs.FileMode) string {
		if m != 0o600 && m != 0o644 {
			return fmt.Sprintf("mode %04o, want %s", m, authorizedKeysModes)
		}
		return ""
	}, FindingFileMode)...)
	data, _, err := readLimited(path, maxAuthorizedKeys)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			add(FindingUnreadable, path, 0, "file does not exist")
		} else {
			add(FindingUnreadable, path, 0, "cannot read: %v", err)
		}
		return out
	}
	lines, err := ReadAuthorizedKeys(data)
	if be := (*BlockError)(nil); errors.As(err, &be) {
		add(FindingBadBlock, path, be.Line, "%s; re-rendering refuses this file until it is fixed", be.Msg)
	}
	var poolSeen, computeSeen bool
	for _, l := range lines {
		switch l.Kind {
		case LineInvalid:
			add(FindingBadLine, path, l.Num, "does not parse as a public key (sshd ignores it): %v", l.Err)
		case LineKey:
			poolSeen = poolSeen || keyEqual(l.Key, opts.Keys.Pool[0])
			computeSeen = computeSeen || keyEqual(l.Key, opts.Keys.Compute[0])
			if opts.Target == TargetMember && containsKey(opts.Keys.Compute, l.Key) {
				add(FindingComputeKeyOnMember, path, l.Num, "accepts the compute key %s: root on any compute node could log in to this member", ssh.FingerprintSHA256(l.Key))
			}
		}
	}
	if !poolSeen {
		add(FindingMissingPoolKey, path, 0, "the current pool key %s is not accepted: members cannot log in", ssh.FingerprintSHA256(opts.Keys.Pool[0]))
	}
	if opts.Target == TargetNode && !computeSeen {
		add(FindingMissingComputeKey, path, 0, "the current compute key %s is not accepted: nodes cannot log in to each other", ssh.FingerprintSHA256(opts.Keys.Compute[0]))
	}
	return out
}

// checkOwnerMode reports a bad owner of path and, through badMode (which
// returns "" when the permission bits are fine), a bad mode as modeKind.
// A path that cannot be stat'ed is FindingUnreadable.
func checkOwnerMode(path string, owner int, badMode func(fs.FileMode) string, modeKind FindingKind) []Finding {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // reported once, when the content is read
		}
		return []Finding{{Kind: FindingUnreadable, Path: path, Message: fmt.Sprintf("cannot stat: %v", err)}}
	}
	var out []Finding
	if !st.IsDir() && !st.Mode().IsRegular() {
		out = append(out, Finding{Kind: modeKind, Path: path, Message: fmt.Sprintf("not a regular file (%s)", st.Mode().Type())})
	} else if msg := badMode(st.Mode().Perm()); msg != "" {
		out = append(out, Finding{Kind: modeKind, Path: path, Message: msg})
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != owner {
		out = append(out, Finding{Kind: FindingOwner, Path: path, Message: fmt.Sprintf("owned by uid %d, want uid %d", sys.Uid, owner)})
	}
	return out
}

// AuditKeyDir checks the key directory: every kind has a readable current
// key, private keys are not readable by group or others and are owned by
// owner, the directory is not writable by group or others, and no pool key
// equals a compute key.
func AuditKeyDir(ctx context.Context, dir string, owner int) ([]Finding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := checkOwnerMode(dir, owner, func(m fs.FileMode) string {
		if m&writableByOthers != 0 {
			return fmt.Sprintf("key directory is writable by group or others (mode %04o), want 0700", m)
		}
		return ""
	}, FindingDirMode)
	if _, err := os.Stat(dir); err != nil {
		return append(out, Finding{Kind: FindingUnreadable, Path: dir, Message: fmt.Sprintf("cannot stat: %v", err)}), nil
	}
	for _, kind := range Kinds() {
		for _, kf := range readKeyFiles(dir, kind) {
			if kf.err != nil {
				out = append(out, Finding{Kind: FindingUnreadable, Path: kf.path, Message: kf.err.Error()})
				continue
			}
			out = append(out, checkOwnerMode(kf.path, owner, func(m fs.FileMode) string {
				if m&0o077 != 0 {
					return fmt.Sprintf("private key is accessible to group or others (mode %04o), want 0600", m)
				}
				return ""
			}, FindingFileMode)...)
		}
	}
	if _, err := loadPublicKeys(dir); errors.Is(err, ErrSameKey) {
		out = append(out, Finding{Kind: FindingSameKey, Path: dir, Message: err.Error()})
	}
	return sortFindings(out), nil
}

// sortFindings orders by path, line, kind and message and drops duplicates
// (two files in one directory report that directory once).
func sortFindings(fs []Finding) []Finding {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Message, b.Message))
	})
	return slices.Compact(fs)
}
