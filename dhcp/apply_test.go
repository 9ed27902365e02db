package dhcp_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/mnpool/mnpool/dhcp"
)

func TestApply(t *testing.T) {
	for _, f := range []dhcp.Format{dhcp.FormatISC, dhcp.FormatKea} {
		t.Run(string(f), func(t *testing.T) {
			chk := requireDaemon(t, f)
			ctx := ctxT(t)
			dir := t.TempDir()
			path := filepath.Join(dir, "dhcp.conf")
			marker := filepath.Join(dir, "reloaded")
			a := &dhcp.Applier{Path: path, Format: f, Checker: chk, Check: dhcp.CheckRequired, ReloadCommand: []string{"touch", marker}}
			v1, err := dhcp.Render(fixture("0"), "mn1", dhcp.Options{Format: f, ServeDynamic: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := a.Apply(ctx, v1.Data)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Changed || res.Checked == "" || res.Backup != "" || res.Reloaded == "" {
				t.Errorf("first apply: %+v", res)
			}
			if _, err := os.Stat(marker); err != nil {
				t.Errorf("reload command not run: %v", err)
			}
			os.Remove(marker)

			res, err = a.Apply(ctx, v1.Data)
			if err != nil || res.Changed || res.Reloaded != "" || res.Checked != "" {
				t.Errorf("same data again: %+v, %v; want nothing done", res, err)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("reload command run although nothing changed")
			}

			v2, err := dhcp.Render(fixture("0"), "mn1", dhcp.Options{Format: f, ServeDynamic: false})
			if err != nil {
				t.Fatal(err)
			}
			res, err = a.Apply(ctx, v2.Data)
			if err != nil || !res.Changed || res.Backup != path+".bak" {
				t.Fatalf("second version: %+v, %v", res, err)
			}
			if b, _ := os.ReadFile(path + ".bak"); string(b) != string(v1.Data) {
				t.Error("backup does not hold the previous file")
			}
			if b, _ := os.ReadFile(path); string(b) != string(v2.Data) {
				t.Error("file does not hold the new configuration")
			}

			bad := append([]byte(nil), v2.Data...)
			bad = append(bad[:len(bad)/2], "}}} garbage {"...)
			if _, err := a.Apply(ctx, bad); !errors.Is(err, dhcp.ErrCheck) {
				t.Fatalf("bad data: %v, want ErrCheck", err)
			}
			if b, _ := os.ReadFile(path); string(b) != string(v2.Data) {
				t.Error("a rejected configuration was written")
			}
			left, _ := filepath.Glob(filepath.Join(dir, ".*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	ctx := ctxT(t)
	dir := t.TempDir()
	data := []byte("# test\n")
	a := &dhcp.Applier{Path: filepath.Join(dir, "a.conf"), Check: dhcp.CheckRequired, Checker: dhcp.Checker{DHCPD: "/nonexistent/dhcpd"}}
	if _, err := a.Apply(ctx, data); !errors.Is(err, dhcp.ErrCheck) {
		t.Errorf("required check without daemon: %v, want ErrCheck", err)
	}
	if _, err := os.Stat(a.Path); !errors.Is(err, os.ErrNotExist) {
		t.Error("file written although the required check could not run")
	}
	b := &dhcp.Applier{Path: filepath.Join(dir, "b.conf"), Check: dhcp.CheckNever, ReloadCommand: []string{"false"}}
	res, err := b.Apply(ctx, data)
	if !errors.Is(err, dhcp.ErrReload) || !res.Changed {
		t.Errorf("failing reload: %+v, %v; want written and ErrReload", res, err)
	}
}

// fakeKea answers one control command on a unix socket like Kea does.
func fakeKea(t *testing.T, answer string) (path string, got chan map[string]any) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "kea.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got = make(chan map[string]any, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var req map[string]any
		if err := json.NewDecoder(c).Decode(&req); err == nil {
			got <- req
		}
		io.WriteString(c, answer)
	}()
	return path, got
}

func TestApplyKeaSocket(t *testing.T) {
	ctx := ctxT(t)
	sock, got := fakeKea(t, `{ "result": 0, "text": "Configuration successful." }`)
	a := &dhcp.Applier{Path: filepath.Join(t.TempDir(), "kea.json"), Format: dhcp.FormatKea, Check: dhcp.CheckNever, KeaControlSocket: sock}
	res, err := a.Apply(ctx, []byte(`{"Dhcp4": {}}`))
	if err != nil || res.Reloaded == "" {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	if req := <-got; req["command"] != "config-reload" {
		t.Errorf("command sent = %v, want config-reload", req)
	}

	sock, _ = fakeKea(t, `{ "result": 1, "text": "bad config" }`)
	a.KeaControlSocket = sock
	_, err = a.Apply(ctx, []byte(`{"Dhcp4": {"x": 1}}`))
	if !errors.Is(err, dhcp.ErrReload) {
		t.Errorf("Kea refusing the reload: %v, want ErrReload", err)
	}
}
