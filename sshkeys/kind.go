package sshkeys

import (
	"fmt"
	"strings"
)

// Kind names one of the two key pairs.
type Kind int

const (
	// KindPool is the key pair the MN and the SNs accept from each other and
	// that compute nodes accept from the members.
	KindPool Kind = iota + 1
	// KindCompute is the key pair every compute node holds. Members never
	// accept it.
	KindCompute
)

// Kinds lists every kind, in the order they are reported.
func Kinds() []Kind { return []Kind{KindPool, KindCompute} }

// String returns "pool" or "compute".
func (k Kind) String() string {
	switch k {
	case KindPool:
		return "pool"
	case KindCompute:
		return "compute"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

func (k Kind) valid() error {
	if k != KindPool && k != KindCompute {
		return fmt.Errorf("%w: %d (allowed: pool, compute)", ErrInvalidKind, int(k))
	}
	return nil
}

// ParseKind accepts "pool" or "compute" (case-insensitive), as a CLI would.
func ParseKind(s string) (Kind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "pool":
		return KindPool, nil
	case "compute":
		return KindCompute, nil
	}
	return 0, fmt.Errorf("%w: %q (allowed: pool, compute)", ErrInvalidKind, s)
}

// Algorithm is the type of a generated key pair.
type Algorithm string

const (
	// Ed25519 is the default: short keys, fast, supported by every OpenSSH
	// since 6.5 (2014).
	Ed25519 Algorithm = "ed25519"
	// RSA is for sites whose older clients or policies require it; the size
	// comes from Options.RSABits.
	RSA Algorithm = "rsa"
)

// Defaults for Options.
const (
	DefaultAlgorithm = Ed25519
	DefaultRSABits   = 4096
	// MinRSABits and MaxRSABits bound Options.RSABits.
	MinRSABits = 3072
	MaxRSABits = 8192
)

// ParseAlgorithm accepts "ed25519" or "rsa" (case-insensitive).
func ParseAlgorithm(s string) (Algorithm, error) {
	a := Algorithm(strings.ToLower(strings.TrimSpace(s)))
	if a != Ed25519 && a != RSA {
		return "", fmt.Errorf("%w: %q (allowed: ed25519, rsa)", ErrInvalidAlgorithm, s)
	}
	return a, nil
}

// Target says whose authorized_keys file is rendered or audited.
type Target int

const (
	// TargetMember is the MN or an SN: accepts the pool key, never the
	// compute key.
	TargetMember Target = iota + 1
	// TargetNode is a compute node: accepts the compute key (node to node)
	// and the pool key (members to nodes).
	TargetNode
)

// String returns "member" or "node".
func (t Target) String() string {
	switch t {
	case TargetMember:
		return "member"
	case TargetNode:
		return "node"
	}
	return fmt.Sprintf("Target(%d)", int(t))
}

func (t Target) valid() error {
	if t != TargetMember && t != TargetNode {
		return fmt.Errorf("%w: %d (allowed: member, node)", ErrInvalidTarget, int(t))
	}
	return nil
}

// ParseTarget accepts "member" or "node" (case-insensitive).
func ParseTarget(s string) (Target, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "member":
		return TargetMember, nil
	case "node":
		return TargetNode, nil
	}
	return 0, fmt.Errorf("%w: %q (allowed: member, node)", ErrInvalidTarget, s)
}

// maxNameLen is the longest DNS name.
const maxNameLen = 253

// validName accepts xCAT host names: 1 to 253 characters from [A-Za-z0-9._-],
// starting with a letter or digit. Names end up in rendered files, so
// anything else (spaces, commas, newlines, '#') is refused.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: %q (want 1 to %d characters)", ErrInvalidName, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("%w: %q (must start with a letter or digit)", ErrInvalidName, name)
		}
		if !alnum && c != '.' && c != '-' && c != '_' {
			return fmt.Errorf("%w: %q (allowed characters: A-Z a-z 0-9 . - _)", ErrInvalidName, name)
		}
	}
	return nil
}
