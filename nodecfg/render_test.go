package nodecfg_test

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mnpool/mnpool/internal/golden"
	"github.com/mnpool/mnpool/nodecfg"
	"github.com/mnpool/mnpool/pool"
	"github.com/mnpool/mnpool/pool/service"
	"github.com/mnpool/mnpool/pool/siteschema"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func renderState() *pool.State {
	all := service.All()
	return &pool.State{
		Site: map[string]string{siteschema.Domain: "cluster"},
		Networks: []pool.Network{
			{Name: "mgmt", Prefix: netip.MustParsePrefix("10.0.0.0/16"), Gateways: []netip.Addr{addr("10.0.0.254"), addr("10.0.0.3")}, Domain: "hpc.example.com"},
			{Name: "v6", Prefix: netip.MustParsePrefix("fd00::/64")},
		},
		Members: []pool.Member{
			{Name: "mn1", Services: all, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.1"), "v6": addr("fd00::1")}},
			{Name: "sn1", Services: []service.Service{service.DHCP, service.TFTP}, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.2"), "v6": addr("fd00::2")}},
			{Name: "sn2", Services: all, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.3")}},
			{Name: "sn3", Services: all, Addresses: map[string]netip.Addr{"mgmt": addr("10.0.0.4")}},
			{Name: "sn4", Services: all, Addresses: map[string]netip.Addr{}},
		},
		Nodes: []pool.Node{
			{Name: "cn1", Network: "mgmt", IP: addr("10.0.1.1"), ServiceNodes: []string{"sn2", "sn1"}},
			{Name: "cn2", Network: "mgmt", IP: addr("10.0.1.2"), ServiceNodes: []string{"sn1", "mn1", "sn3", "sn2"}},
			{Name: "cn3", Network: "mgmt", IP: addr("10.0.1.3"), ServiceNodes: []string{"mn1", "sn3"}},
			{Name: "cn4", Network: "v6", IP: addr("fd00::100"), ServiceNodes: []string{"sn1", "mn1"}},
			{Name: "cn5", IP: addr("10.0.1.5"), ServiceNodes: []string{"sn1", "mn1"}},
			{Name: "cn6", Network: "mgmt", IP: addr("10.0.1.6"), ServiceNodes: []string{"sn4"}},
			{Name: "cn7", Network: "mgmt", ServiceNodes: []string{"sn2", "sn1"}},
		},
	}
}

func dump(files []nodecfg.File) string {
	var b strings.Builder
	for _, f := range files {
		b.WriteString("==> " + string(f.Kind) + " " + f.Kind.Path() + " <==\n")
		b.Write(f.Data)
	}
	return b.String()
}

func TestBuiltinRenderGolden(t *testing.T) {
	st := renderState()
	for _, n := range st.Nodes[:4] {
		t.Run(n.Name, func(t *testing.T) {
			files, err := nodecfg.Builtin{}.Render(st, n)
			require.NoError(t, err)
			for _, f := range files {
				require.NoError(t, f.Validate(), f.Kind)
			}
			again, err := nodecfg.Builtin{}.Render(st, n)
			require.NoError(t, err)
			require.Equal(t, files, again, "deterministic")
			golden.Check(t, filepath.Join("testdata", n.Name+".golden"), []byte(dump(files)))
		})
	}
}

func TestBuiltinRenderKindsAndErrors(t *testing.T) {
	st := renderState()
	files, err := nodecfg.Builtin{Kinds: []nodecfg.Kind{nodecfg.KindRoute}}.Render(st, st.Nodes[0])
	require.NoError(t, err)
	require.Equal(t, []nodecfg.File{{Kind: nodecfg.KindRoute, Data: []byte("10.0.0.3\n")}}, files)

	_, err = nodecfg.Builtin{}.Render(st, st.Nodes[4])
	require.ErrorIs(t, err, nodecfg.ErrRender)
	require.ErrorContains(t, err, "node cn5 has no network")
	_, err = nodecfg.Builtin{}.Render(st, st.Nodes[5])
	require.ErrorIs(t, err, nodecfg.ErrRender)
	require.ErrorContains(t, err, "no servicenode in [sn4] has an address on network mgmt")
}

func TestJobsAndUseAddress(t *testing.T) {
	st := renderState()
	jobs, failed := nodecfg.Jobs(st, nodecfg.Builtin{Kinds: []nodecfg.Kind{nodecfg.KindResolv}}, []string{"cn1", "cn5", "cn7", "nope"})
	require.Len(t, jobs, 1)
	require.Equal(t, nodecfg.Target{Node: "cn1", Addr: "10.0.1.1"}, jobs[0].Target)
	require.Len(t, failed, 3)
	require.ErrorContains(t, failed[0].Err, "cn5 has no network")
	require.ErrorContains(t, failed[1].Err, "node cn7 has no IP address")
	require.ErrorContains(t, failed[2].Err, "node nope is not in the pool")

	// snmove -D: the nodes use another address of sn2.
	st2 := nodecfg.UseAddress(st, "sn2", addr("10.0.9.3"))
	jobs, _ = nodecfg.Jobs(st2, nodecfg.Builtin{Kinds: []nodecfg.Kind{nodecfg.KindResolv}}, []string{"cn1"})
	require.Contains(t, string(jobs[0].Files[0].Data), "nameserver 10.0.9.3\n")
	m, _ := st.Member("sn2")
	require.Equal(t, addr("10.0.0.3"), m.Addresses["mgmt"], "the original state is not changed")
}

func TestScriptIsFixedText(t *testing.T) {
	s, err := nodecfg.Script(nodecfg.KindRoute, "/srv/images/rhel9", true)
	require.NoError(t, err)
	require.Contains(t, s, "r='/srv/images/rhel9'\n")
	require.Contains(t, s, `f="$r/etc/mnpool/default-route"`)
	require.Contains(t, s, `ip route replace default via "$gw"`)
	s, err = nodecfg.Script(nodecfg.KindResolv, "/", false)
	require.NoError(t, err)
	require.Contains(t, s, "r=''\na=0\n")
	_, err = nodecfg.Script(nodecfg.KindResolv, "-rf", false)
	require.ErrorIs(t, err, nodecfg.ErrInvalid)
}

// TestBuiltinChronyConfParsesWithChronyd checks the rendered chrony.conf
// with the real daemon's parser (chronyd -p).
func TestBuiltinChronyConfParsesWithChronyd(t *testing.T) {
	chronyd, err := exec.LookPath("chronyd")
	if err != nil {
		t.Skip("chronyd not installed (apt-get install chrony)")
	}
	st := renderState()
	for _, n := range st.Nodes[:4] {
		files, err := nodecfg.Builtin{Kinds: []nodecfg.Kind{nodecfg.KindChrony}}.Render(st, n)
		require.NoError(t, err)
		require.Len(t, files, 1, n.Name)
		path := filepath.Join(t.TempDir(), "chrony.conf")
		require.NoError(t, os.WriteFile(path, files[0].Data, 0o644))
		out, err := exec.Command(chronyd, "-p", "-f", path).CombinedOutput()
		require.NoError(t, err, "%s: %s", n.Name, out)
		require.Contains(t, string(out), "iburst")
	}
}
