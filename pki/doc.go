// Package pki is the pool's certificate authority: it makes the pool CA,
// issues member and user certificates from it, rotates it, and builds the
// TLS 1.3 configurations the console broker and its clients use.
//
// Certificates carry who they were issued to in the subject:
//
//   - a member certificate: CN = the member name, DNS SAN = the member
//     name, OU = "member"; usable as a server and as a client (members
//     proxy to each other);
//   - a user certificate: CN = the user name, OU = "user" and one
//     "group:NAME" OU per group; usable only as a client.
//
// Keys are ECDSA P-256. Private keys are written 0600 and never logged.
// The files live under a directory (DefaultDir):
//
//	ca.crt           the trust bundle: the current CA first, then CAs
//	                 still trusted during a rotation
//	ca.key           the CA's private key (only where certificates are
//	                 issued: members holding the db service)
//	member.crt/.key  this member's certificate
//	users/NAME.crt/.key  user certificates issued here, to hand out
package pki
