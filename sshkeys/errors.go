package sshkeys

import "errors"

// Sentinel errors. Every error returned by this package that has one of these
// causes wraps it, so callers match with errors.Is.
var (
	// ErrNotInitialized: the key directory has no key of the requested kind.
	ErrNotInitialized = errors.New("sshkeys: keys not initialised")
	// ErrInvalidKind: a Kind value other than KindPool or KindCompute.
	ErrInvalidKind = errors.New("sshkeys: invalid key kind")
	// ErrInvalidAlgorithm: an Algorithm or RSA size that is not supported.
	ErrInvalidAlgorithm = errors.New("sshkeys: invalid key algorithm")
	// ErrInvalidTarget: a Target value other than TargetMember or TargetNode.
	ErrInvalidTarget = errors.New("sshkeys: invalid target")
	// ErrInvalidName: a member or node name with characters outside [A-Za-z0-9._-].
	ErrInvalidName = errors.New("sshkeys: invalid name")
	// ErrInvalidAddress: a member address that is not an IP address.
	ErrInvalidAddress = errors.New("sshkeys: invalid address")
	// ErrInvalidKey: a key or authorized_keys line that does not parse.
	ErrInvalidKey = errors.New("sshkeys: invalid key")
	// ErrComputeKeyOnMember: the compute key was offered for a member's
	// authorized_keys, which must never accept it.
	ErrComputeKeyOnMember = errors.New("sshkeys: compute key must not be accepted by a pool member")
	// ErrSameKey: the pool key and the compute key are the same key.
	ErrSameKey = errors.New("sshkeys: pool key and compute key are the same")
	// ErrBadBlock: the mnpool managed block markers in a file are unbalanced
	// or repeated, so the file cannot be re-rendered without guessing.
	ErrBadBlock = errors.New("sshkeys: malformed managed block")
	// ErrRotationInProgress: a rotation of this kind was started and not finished.
	ErrRotationInProgress = errors.New("sshkeys: rotation in progress")
	// ErrNoRotation: FinishRotation was called with no rotation in progress.
	ErrNoRotation = errors.New("sshkeys: no rotation in progress")
	// ErrKeyFile: a key file exists but cannot be used (bad format, wrong type).
	ErrKeyFile = errors.New("sshkeys: unusable key file")
)
