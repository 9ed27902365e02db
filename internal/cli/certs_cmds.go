package cli

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mnpool/mnpool/pki"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
)

// certsFlags are the flags every certs subcommand takes.
type certsFlags struct {
	dir      string
	validity time.Duration
	force    bool
}

func newCertsCmd(g *globals) *cobra.Command {
	f := &certsFlags{}
	cmd := &cobra.Command{
		Use:   "certs SUBCOMMAND",
		Short: "The pool CA and the certificates of the console brokers and their users",
		Long: `The console brokers talk TLS 1.3 and trust certificates of the pool CA only.
'certs init' makes the CA (on a member holding the db service) and this
member's certificate; 'certs issue' makes a member's or a user's certificate;
'certs rotate' replaces the CA; 'certs show' lists what a directory holds.
Private keys are written 0600; the CA key stays where it was made.
See docs/SECURITY.md.`,
		Example: `  mnpool certs init
  mnpool certs issue --member sn1 --out /root/sn1-pki
  mnpool certs issue --user alice --group ops
  mnpool certs rotate
  mnpool certs rotate --finish
  mnpool certs show`,
	}
	cmd.PersistentFlags().StringVar(&f.dir, "dir", pki.DefaultDir, "certificate directory (ca.crt, ca.key, member.crt, member.key, users/)")
	cmd.AddCommand(newCertsInitCmd(g, f), newCertsIssueCmd(g, f), newCertsRotateCmd(g, f), newCertsShowCmd(g, f))
	return cmd
}

// mayHoldCA checks that self runs the db service (where the CA key
// belongs) unless the administrator said otherwise.
func (g *globals) mayHoldCA(ctx context.Context, anywhere bool) error {
	if anywhere {
		return nil
	}
	self := g.selfName()
	s, err := g.open(ctx)
	if err != nil {
		return fmt.Errorf("%w (to keep the CA key on a host that is not a db member, give --ca-anywhere)", err)
	}
	defer s.Close()
	m, err := s.Member(ctx, self)
	if err != nil {
		return fmt.Errorf("%s: %w (give --self NAME, or --ca-anywhere)", self, err)
	}
	if !m.Runs(service.DB) {
		return fmt.Errorf("%s does not hold the db service: keep the CA key on a member that does, or give --ca-anywhere", self)
	}
	return nil
}

func newCertsInitCmd(g *globals, f *certsFlags) *cobra.Command {
	var name string
	var anywhere, noMember bool
	cmd := &cobra.Command{
		Use:   "init [--name POOL]",
		Short: "Make the pool CA (ca.crt, ca.key) and this member's certificate",
		Long: `Makes a new CA in --dir: ca.crt (the trust bundle, 0644) and ca.key (0600),
then this member's certificate (member.crt, member.key) unless --no-member.
Run it once, on a member holding the db service. Existing files are kept
unless --force (which makes every certificate issued so far untrusted).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pki.ValidateName("pool", name); err != nil {
				return usageError{err}
			}
			if err := g.mayHoldCA(cmd.Context(), anywhere); err != nil {
				return err
			}
			d := pki.Dir(f.dir)
			ca, err := pki.InitCA(d, name, 0, f.force)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "CA %q written: %s, key %s (0600)\n", ca.Cert.Subject.CommonName, d.CACert(), d.CAKey())
			if noMember {
				return nil
			}
			return g.issueMember(cmd.Context(), d, g.selfName(), "", f)
		},
	}
	cmd.Flags().StringVar(&name, "name", "pool", "pool name in the CA's subject")
	cmd.Flags().BoolVar(&anywhere, "ca-anywhere", false, "keep the CA key here although this host is not a member holding the db service")
	cmd.Flags().BoolVar(&noMember, "no-member", false, "do not issue this member's certificate")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace an existing CA")
	return cmd
}

// issueMember issues member's certificate into d (this member) or out,
// with the member's pool addresses as IP names when the pool is reachable.
func (g *globals) issueMember(ctx context.Context, d pki.Dir, member, out string, f *certsFlags) error {
	req := pki.Request{Kind: pki.KindMember, Name: member, Validity: f.validity}
	if s, err := g.open(ctx); err == nil {
		m, err := s.Member(ctx, member)
		s.Close()
		if err != nil {
			return err
		}
		req.IPs = memberIPs(m)
	}
	p, err := pki.IssueFiles(d, req, out, member == g.selfName(), f.force)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.io.Out, "member certificate of %s written: %s, key %s (0600), valid until %s\n", member, p.Cert, p.Key, p.Issued.Cert.NotAfter.UTC().Format(time.DateOnly))
	if p.Elsewhere {
		fmt.Fprintf(g.io.Out, "copy %s/{ca.crt,member.crt,member.key} to %s:%s/ (keep member.key 0600); its broker loads them within 5 s\n", filepath.Dir(p.Cert), member, pki.DefaultDir)
	}
	return nil
}

func memberIPs(m pool.Member) []netip.Addr {
	var ips []netip.Addr
	for _, a := range m.Addresses {
		ips = append(ips, a)
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	return ips
}

func newCertsIssueCmd(g *globals, f *certsFlags) *cobra.Command {
	var member, user, groups, out string
	cmd := &cobra.Command{
		Use:   "issue (--member NAME | --user NAME [--group G1,G2]) [--out DIR]",
		Short: "Issue a member's or a user's certificate from the pool CA",
		Long: `Issues a certificate signed by the CA in --dir (ca.key must be here).

--member NAME   a member's certificate: CN and DNS name NAME, the member's
                addresses as IP names. For this member it goes to
                --dir/member.crt; for another to --out DIR (default
                --dir/members/NAME/) with ca.crt, to copy to that member.
--user NAME     a user's certificate for 'mnpool console --cert', with the
                groups of --group (used by site.consoleacl). It goes to
                --out DIR (default --dir/users/) as NAME.crt and NAME.key.

Issuing again for the same name needs --force; it renews the certificate.`,
		Example: `  mnpool certs issue --member sn2
  mnpool certs issue --user alice --group ops --out /home/alice/.mnpool`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (member == "") == (user == "") {
				return usagef("give --member NAME or --user NAME")
			}
			var gl []string
			if groups != "" {
				if member != "" {
					return usagef("--group is for --user certificates")
				}
				gl = strings.Split(groups, ",")
			}
			d := pki.Dir(f.dir)
			if member != "" {
				if err := pki.ValidateName("member", member); err != nil {
					return usageError{err}
				}
				return g.issueMember(cmd.Context(), d, member, out, f)
			}
			return g.issueUser(d, user, gl, out, f)
		},
	}
	cmd.Flags().StringVar(&member, "member", "", "issue a member certificate for this member")
	cmd.Flags().StringVar(&user, "user", "", "issue a user certificate for this user")
	cmd.Flags().StringVar(&groups, "group", "", "the user's groups, comma-separated")
	cmd.Flags().StringVar(&out, "out", "", "directory to write to")
	cmd.Flags().DurationVar(&f.validity, "validity", pki.DefaultValidity, "how long the certificate is valid")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace an existing certificate")
	return cmd
}

func (g *globals) issueUser(d pki.Dir, user string, groups []string, out string, f *certsFlags) error {
	if err := pki.ValidateName("user", user); err != nil {
		return usageError{err}
	}
	p, err := pki.IssueFiles(d, pki.Request{Kind: pki.KindUser, Name: user, Groups: groups, Validity: f.validity}, out, false, f.force)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.io.Out, "user certificate of %s written: %s, key %s (0600), valid until %s\n", user, p.Cert, p.Key, p.Issued.Cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(g.io.Out, "give them to %s as ~/.mnpool/console.crt and console.key (owned by %s, key 0600)\n", user, user)
	return nil
}

func newCertsRotateCmd(g *globals, f *certsFlags) *cobra.Command {
	var name string
	var finish bool
	cmd := &cobra.Command{
		Use:   "rotate [--finish]",
		Short: "Replace the pool CA, trusting the old one until --finish",
		Long: `Makes a new CA in --dir and puts it first in ca.crt, keeping the old CA in
the bundle so certificates of both are trusted. Then:
  1. copy ca.crt to every member and user;
  2. mnpool certs issue --member NAME --force   for every member, and copy
     ca.crt, member.crt and member.key to each;
     mnpool certs issue --user NAME --force     for every user;
  3. mnpool certs rotate --finish               drops the old CA from ca.crt;
     copy ca.crt to every member again.
Brokers load changed files within 5 s; no restart is needed.
To renew one certificate without a new CA, issue it again with --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := pki.Dir(f.dir)
			if finish {
				n, err := pki.FinishRotation(d)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.io.Out, "%d old CA(s) dropped from %s; copy it to every member (brokers load it within 5 s)\n", n, d.CACert())
				return nil
			}
			ca, err := pki.RotateCA(d, name, 0)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.io.Out, "new CA %q first in %s (the old one stays trusted); copy it to every member, issue every member and user certificate again with --force, then run mnpool certs rotate --finish\n", ca.Cert.Subject.CommonName, d.CACert())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "pool", "pool name in the new CA's subject")
	cmd.Flags().BoolVar(&finish, "finish", false, "drop the old CAs from the trust bundle")
	return cmd
}

func newCertsShowCmd(g *globals, f *certsFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [FILE...]",
		Short: "Show the certificates of --dir (or of the files given)",
		RunE: func(cmd *cobra.Command, args []string) error {
			files := args
			if len(files) == 0 {
				d := pki.Dir(f.dir)
				files = []string{d.CACert(), d.MemberCert()}
				users, _ := filepath.Glob(filepath.Join(f.dir, "users", "*.crt"))
				files = append(files, users...)
			}
			rows := []pki.CertInfo{}
			for _, file := range files {
				infos, err := pki.Describe(file)
				if err != nil {
					if len(args) == 0 && os.IsNotExist(err) {
						continue
					}
					return err
				}
				rows = append(rows, infos...)
			}
			if g.json {
				return printJSON(g.io.Out, rows)
			}
			t := newTable(g.io.Out, "file", "kind", "name", "groups", "not after", "sha256")
			for _, r := range rows {
				kind, name := r.Kind, r.Name
				if r.IsCA {
					kind, name = "ca", r.Subject
				}
				t.row(r.File, kind, name, strings.Join(r.Groups, ","), r.NotAfter.Format(time.DateOnly), r.SHA256[:23]+"...")
			}
			return t.flush()
		},
	}
	g.addJSON(cmd)
	return cmd
}
