package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/sshkeys"
)

func newSSHKeysCmd(g *globals) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "sshkeys",
		Short: "Manage the pool SSH key (members) and the compute SSH key (nodes), kept apart",
		Long: `Members (MN and SNs) accept the pool key from each other; compute nodes hold
the compute key. A member never accepts the compute key, so root on a compute
node cannot log in to a management node. Keys live in --dir, on the shared
file system all members mount (private keys 0600, never printed).`,
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", sshkeys.DefaultDir, "key directory (on the shared file system)")
	cmd.AddCommand(newSSHKeysInitCmd(g, &dir), newSSHKeysShowCmd(g, &dir), newSSHKeysAuthorizedKeysCmd(g, &dir),
		newSSHKeysRotateCmd(g, &dir), newSSHKeysAuditCmd(g, &dir))
	return cmd
}

// newSSHKeysInitCmd: mnpool sshkeys init. dir is the parent's --dir.
func newSSHKeysInitCmd(g *globals, dir *string) *cobra.Command {
	var alg string
	var bits int
	var force bool
	var kindFlag string
	initCmd := &cobra.Command{
		Use:   "init [--type ed25519|rsa] [--kind pool|compute]",
		Short: "Generate the pool and compute key pairs (existing keys are kept unless --force)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := sshkeys.Options{RSABits: bits, Force: force, Logger: g.logger()}
			if alg != "" {
				a, err := sshkeys.ParseAlgorithm(alg)
				if err != nil {
					return usageError{err}
				}
				o.Algorithm = a
			}
			if kindFlag != "" {
				k, err := sshkeys.ParseKind(kindFlag)
				if err != nil {
					return usageError{err}
				}
				o.Kinds = []sshkeys.Kind{k}
			}
			res, err := sshkeys.Init(cmd.Context(), *dir, o)
			if err != nil {
				return err
			}
			for _, k := range res.Created {
				fmt.Fprintf(g.io.Out, "created %s key in %s\n", k, *dir)
			}
			for _, k := range res.Existing {
				fmt.Fprintf(g.io.Out, "kept existing %s key in %s\n", k, *dir)
			}
			return nil
		},
	}
	initCmd.Flags().StringVar(&alg, "type", "", "key type: ed25519 (default) or rsa")
	initCmd.Flags().IntVar(&bits, "bits", 0, "RSA key size (default 4096)")
	initCmd.Flags().BoolVar(&force, "force", false, "replace existing keys")
	initCmd.Flags().StringVar(&kindFlag, "kind", "", "only this kind: pool or compute")
	return initCmd
}

// newSSHKeysShowCmd: mnpool sshkeys show.
func newSSHKeysShowCmd(g *globals, dir *string) *cobra.Command {
	show := &cobra.Command{
		Use:   "show",
		Short: "Show the public keys and fingerprints (never private material)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			infos, err := sshkeys.Show(cmd.Context(), *dir)
			if err != nil {
				return err
			}
			if g.json {
				return printKeyInfosJSON(g, infos)
			}
			t := newTable(g.io.Out, "kind", "state", "type", "bits", "fingerprint", "path")
			for _, i := range infos {
				state := "current"
				if i.Previous {
					state = "previous (rotation in progress)"
				}
				t.row(i.Kind.String(), state, i.Type, strconv.Itoa(i.Bits), i.Fingerprint, i.Path)
			}
			return t.flush()
		},
	}
	g.addJSON(show)
	return show
}

func printKeyInfosJSON(g *globals, infos []sshkeys.KeyInfo) error {
	type row struct {
		Kind          string    `json:"kind"`
		Previous      bool      `json:"previous"`
		Type          string    `json:"type"`
		Bits          int       `json:"bits"`
		Fingerprint   string    `json:"fingerprint"`
		AuthorizedKey string    `json:"authorized_key"`
		Path          string    `json:"path"`
		ModTime       time.Time `json:"mtime"`
	}
	out := make([]row, 0, len(infos))
	for _, i := range infos {
		out = append(out, row{i.Kind.String(), i.Previous, i.Type, i.Bits, i.Fingerprint, i.AuthorizedKey, i.Path, i.ModTime})
	}
	return printJSON(g.io.Out, out)
}

// newSSHKeysAuthorizedKeysCmd: mnpool sshkeys authorized-keys.
func newSSHKeysAuthorizedKeysCmd(g *globals, dir *string) *cobra.Command {
	var member, node, file string
	var extra []string
	ak := &cobra.Command{
		Use:   "authorized-keys --member NAME | --node NAME [--file PATH] [--extra-key LINE]...",
		Short: "Render authorized_keys for a member or a compute node (stdout, or update --file in place)",
		Long: `For a member the managed block holds the pool key (and --extra-key lines, never
the compute key); for a compute node the compute key and the pool key. With
--file the file is updated atomically and lines outside the
"# BEGIN/END mnpool managed keys" block are kept; a compute key found on a
member outside the block is removed and reported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (member == "") == (node == "") {
				return usagef("give exactly one of --member NAME or --node NAME")
			}
			spec := sshkeys.AuthorizedKeysSpec{Target: sshkeys.TargetMember, Name: member, Extra: extra}
			if node != "" {
				spec.Target, spec.Name = sshkeys.TargetNode, node
			}
			if err := checkKeyTarget(cmd.Context(), g, member, node); err != nil {
				return err
			}
			var err error
			if spec.Keys, err = sshkeys.LoadPublicKeys(cmd.Context(), *dir); err != nil {
				return err
			}
			return writeAuthorizedKeys(cmd.Context(), g, spec, file)
		},
	}
	ak.Flags().StringVar(&member, "member", "", "render for this pool member")
	ak.Flags().StringVar(&node, "node", "", "render for this compute node")
	ak.Flags().StringVar(&file, "file", "", "update this authorized_keys file in place instead of printing")
	ak.Flags().StringArrayVar(&extra, "extra-key", nil, "another authorized_keys line to accept (repeatable)")
	return ak
}

// checkKeyTarget fails unless member (when given) is a pool member, or
// node is a node of the pool.
func checkKeyTarget(ctx context.Context, g *globals, member, node string) error {
	s, err := g.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if member != "" {
		_, err := s.Member(ctx, member)
		return err
	}
	st, err := s.LoadState(ctx)
	if err != nil {
		return err
	}
	_, err = selectNodes(st, []string{node})
	return err
}

// writeAuthorizedKeys prints the rendered file, or updates file in place.
func writeAuthorizedKeys(ctx context.Context, g *globals, spec sshkeys.AuthorizedKeysSpec, file string) error {
	if file == "" {
		out, removed, err := sshkeys.RenderAuthorizedKeys(nil, spec)
		if err != nil {
			return err
		}
		for _, f := range removed {
			fmt.Fprintln(g.io.Err, "removed:", f)
		}
		_, err = g.io.Out.Write(out)
		return err
	}
	changed, removed, err := sshkeys.UpdateAuthorizedKeysFile(ctx, file, spec)
	if err != nil {
		return err
	}
	for _, f := range removed {
		fmt.Fprintln(g.io.Out, "removed:", f)
	}
	if changed {
		fmt.Fprintf(g.io.Out, "%s updated\n", file)
	} else {
		fmt.Fprintf(g.io.Out, "%s already up to date\n", file)
	}
	return nil
}

// newSSHKeysRotateCmd: mnpool sshkeys rotate.
func newSSHKeysRotateCmd(g *globals, dir *string) *cobra.Command {
	var finish bool
	var rotKind string
	rotate := &cobra.Command{
		Use:   "rotate --kind pool|compute [--finish]",
		Short: "Start a key rotation (old and new key both accepted), or --finish it (old key removed)",
		Long: `Rotation has two steps so that no member or node is locked out:
  1. mnpool sshkeys rotate --kind pool      new key made; re-render authorized_keys
                                            everywhere: both keys are accepted
  2. mnpool sshkeys rotate --kind pool --finish
                                            old key removed; re-render again
The grace period between the steps is yours to choose; no clock decides it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := sshkeys.ParseKind(rotKind)
			if err != nil {
				return usageError{err}
			}
			o := sshkeys.Options{Logger: g.logger()}
			if finish {
				if err := sshkeys.FinishRotation(cmd.Context(), *dir, k, o); err != nil {
					return err
				}
				fmt.Fprintf(g.io.Out, "%s key rotation finished: the previous key is removed; re-render authorized_keys files\n", k)
				return nil
			}
			info, err := sshkeys.Rotate(cmd.Context(), *dir, k, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "new %s key %s; both keys are accepted after re-rendering authorized_keys; finish with --finish\n", k, info.Fingerprint)
			return nil
		},
	}
	rotate.Flags().StringVar(&rotKind, "kind", "", "which key: pool or compute (required)")
	rotate.Flags().BoolVar(&finish, "finish", false, "end the grace period and remove the previous key")
	return rotate
}

// newSSHKeysAuditCmd: mnpool sshkeys audit.
func newSSHKeysAuditCmd(g *globals, dir *string) *cobra.Command {
	var target string
	audit := &cobra.Command{
		Use:   "audit [--target member|node] FILE...",
		Short: "Check authorized_keys files; exit 1 when anything is wrong",
		Long: `audit reports every violation: the compute key on a member, a missing pool key,
lines that do not parse, bad file or directory modes and owners. It also checks
the key directory itself.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tg, err := sshkeys.ParseTarget(target)
			if err != nil {
				return usageError{err}
			}
			keys, err := sshkeys.LoadPublicKeys(cmd.Context(), *dir)
			if err != nil {
				return err
			}
			findings, err := sshkeys.Audit(cmd.Context(), sshkeys.AuditOptions{Target: tg, Keys: keys, Owner: os.Getuid()}, args...)
			if err != nil {
				return err
			}
			kd, err := sshkeys.AuditKeyDir(cmd.Context(), *dir, os.Getuid())
			if err != nil {
				return err
			}
			findings = append(findings, kd...)
			if g.json {
				type row struct {
					Kind    string `json:"kind"`
					Path    string `json:"path"`
					Line    int    `json:"line,omitempty"`
					Message string `json:"message"`
				}
				out := make([]row, 0, len(findings))
				for _, f := range findings {
					out = append(out, row{f.Kind.String(), f.Path, f.Line, f.Message})
				}
				if err := printJSON(g.io.Out, out); err != nil {
					return err
				}
			} else {
				for _, f := range findings {
					fmt.Fprintln(g.io.Out, f)
				}
			}
			if len(findings) > 0 {
				return fmt.Errorf("%d problems found", len(findings))
			}
			if !g.json {
				fmt.Fprintf(g.io.Out, "%d files clean\n", len(args))
			}
			return nil
		},
	}
	audit.Flags().StringVar(&target, "target", "member", "whose files these are: member or node")
	g.addJSON(audit)
	return audit
}
