package sshkeys_test

import (
	"fmt"
	"strings"

	"github.com/mnpool/mnpool/sshkeys"
	"golang.org/x/crypto/ssh"
)

func parse(line string) ssh.PublicKey {
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		panic(err)
	}
	return k
}

// A member's file keeps the administrator's lines, loses the compute key
// that an older setup put there, and gains the pool key in the mnpool block.
func ExampleRenderAuthorizedKeys() {
	keys := sshkeys.PublicKeys{
		Pool:    []ssh.PublicKey{parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIISC6E06n4vmOIR2PE+gs2PWBZqCmAykoepT3wdXQE/f")},
		Compute: []ssh.PublicKey{parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOg5D8hSCM5icCt4nR/WBwFpustVJIo7i64unT4Ksgc8")},
	}
	existing := strings.Join([]string{
		"# added by hand",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqLUxFGeXYVYf75oMIGfCoC6vB7c2jpe+SmQbeiZJua alice",
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOg5D8hSCM5icCt4nR/WBwFpustVJIo7i64unT4Ksgc8 xcat-common",
	}, "\n")
	out, removed, err := sshkeys.RenderAuthorizedKeys([]byte(existing), sshkeys.AuthorizedKeysSpec{
		Target: sshkeys.TargetMember, Name: "sn1", Keys: keys,
	})
	if err != nil {
		panic(err)
	}
	fmt.Print(string(out))
	for _, f := range removed {
		fmt.Printf("line %d: %s\n", f.Line, f.Kind)
	}
	// Output:
	// # added by hand
	// ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKqLUxFGeXYVYf75oMIGfCoC6vB7c2jpe+SmQbeiZJua alice
	// # BEGIN mnpool managed keys
	// # Rendered by mnpool for member sn1; lines inside this block are replaced on every render.
	// ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIISC6E06n4vmOIR2PE+gs2PWBZqCmAykoepT3wdXQE/f mnpool-pool
	// # END mnpool managed keys
	// line 3: compute-key-on-member
}
