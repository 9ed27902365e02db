// Package sshkeys keeps the two SSH identities of a management node pool
// apart: the pool key, which the MN and the SNs accept from each other, and
// the compute key, which every compute node holds.
//
// Every compute node carries the common compute private key, so root on any
// node could use it. If the members accepted that key, root on a node would be
// root on every management node. The pool key is therefore a second key pair,
// known only to the members (it lives on the shared file system under
// /etc/xcat, which compute nodes do not mount), and accepted by members and
// nodes alike, so that any member can reach any other member and every node.
//
// The package provides:
//
//   - key storage in a directory ([Init], [Show], [Signer], [Signers],
//     [LoadPublicKeys]), with OpenSSH private key files written atomically
//     with mode 0600;
//   - rotation with a grace period decided by the administrator ([Rotate],
//     then [FinishRotation]);
//   - rendering of authorized_keys for members and compute nodes
//     ([RenderAuthorizedKeys], [UpdateAuthorizedKeysFile]) inside a marked
//     block, keeping the lines an administrator added by hand;
//   - rendering of known_hosts entries for members ([RenderKnownHosts]);
//   - an audit of authorized_keys files and of the key directory ([Audit],
//     [AuditKeyDir]) that reports typed findings with file and line.
//
// Nothing here prints; errors wrap the package sentinels (see errors.go) and
// name the offending value. Private key material is never logged and never
// put in an error message.
//
// See docs/SSHKEYS.md for the layout on disk, the rotation procedure and the
// reasons behind the defaults.
package sshkeys
