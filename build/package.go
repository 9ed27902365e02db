package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

type pkgOptions struct {
	stage, out, version, arch, formats string
}

// buildPackages packs the staged install tree (make install
// DESTDIR=STAGE PREFIX=/usr) into one package per format. Files under
// /etc are configuration (kept on upgrade when changed); the zsh
// completion goes where each distribution's zsh looks.
func buildPackages(o pkgOptions) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	ver, err := packageVersion(o.version)
	if err != nil {
		return err
	}
	for _, format := range strings.Split(o.formats, ",") {
		contents, err := stageContents(o.stage)
		if err != nil {
			return err
		}
		info := packageInfo(ver, o.arch, contents)
		p, err := nfpm.Get(format)
		if err != nil {
			return err
		}
		if err := nfpm.PrepareForPackager(info, format); err != nil {
			return fmt.Errorf("%s: %w", format, err)
		}
		path := filepath.Join(o.out, p.ConventionalFileName(info))
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := p.Package(info, f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", format, err)
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Println(path)
	}
	return nil
}

func packageInfo(ver, arch string, contents files.Contents) *nfpm.Info {
	scripts := "../packaging/scripts/"
	return &nfpm.Info{
		Name:          "mnpool",
		Arch:          arch,
		Platform:      "linux",
		Version:       ver,
		VersionSchema: "none",
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "mnpool developers <mnpool@localhost>",
		Description: "Management Node Pool for xCAT clusters\n" +
			"mnpool runs one MN plus service nodes, all active, with the state in\n" +
			"MariaDB Galera (or SQLite): mnpool, snmove, makedhcp, makemn and the\n" +
			"mnpoold agent, with systemd units, man pages and shell completion.",
		Homepage: "https://github.com/mnpool/mnpool",
		License:  "Apache-2.0",
		MTime:    time.Unix(0, 0).UTC(),
		Overridables: nfpm.Overridables{
			Contents: contents,
			Suggests: []string{"mariadb-server", "galera-4"},
			Scripts: nfpm.Scripts{
				PostInstall: scripts + "postinstall.sh",
				PreRemove:   scripts + "preremove.sh",
				PostRemove:  scripts + "postremove.sh",
			},
		},
	}
}

// stageContents lists every file and symlink of the staged tree, and the
// directories mnpool owns (/etc/mnpool, its sshkeys, /var/lib/mnpool)
// with their modes.
func stageContents(stage string) (files.Contents, error) {
	var out files.Contents
	err := filepath.WalkDir(stage, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == stage {
			return err
		}
		rel, err := filepath.Rel(stage, path)
		if err != nil {
			return err
		}
		dst := "/" + filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		c := &files.Content{Source: path, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: fi.Mode().Perm()}}
		switch {
		case d.IsDir():
			if !strings.HasPrefix(dst, "/etc/mnpool") && !strings.HasPrefix(dst, "/var/lib/mnpool") {
				return nil
			}
			c.Source, c.Type = "", files.TypeDir
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			c.Source, c.Destination, c.Type, c.FileInfo = target, dst, files.TypeSymlink, nil
		case strings.HasPrefix(dst, "/etc/"):
			c.Type = files.TypeConfigNoReplace
		}
		if zsh, ok := strings.CutPrefix(dst, "/usr/share/zsh/site-functions/"); ok {
			deb := *c
			deb.Destination, deb.Packager = "/usr/share/zsh/vendor-completions/"+zsh, "deb"
			c.Packager = "rpm"
			out = append(out, &deb)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

var (
	tagRe      = regexp.MustCompile(`^v?(\d+\.\d+\.\d+)(?:-(\d+)-g([0-9a-f]+))?(-dirty)?$`)
	describeRe = regexp.MustCompile(`^([0-9a-f]{7,40})(-dirty)?$`)
)

// packageVersion turns a `git describe --tags --always --dirty` string
// into a version deb and rpm both order correctly: v1.2.0 -> 1.2.0,
// v1.2.0-3-gabc1234 -> 1.2.0+git3.abc1234 (after 1.2.0), a tree without
// tags -> 0.0.0+git.abc1234; a dirty tree adds ".dirty".
func packageVersion(describe string) (string, error) {
	if m := tagRe.FindStringSubmatch(describe); m != nil {
		v := m[1]
		if m[2] != "" {
			v += "+git" + m[2] + "." + m[3]
		}
		if m[4] != "" {
			v += sep(v) + "dirty"
		}
		return v, nil
	}
	if m := describeRe.FindStringSubmatch(describe); m != nil {
		v := "0.0.0+git." + m[1]
		if m[2] != "" {
			v += ".dirty"
		}
		return v, nil
	}
	return "", usageErr{fmt.Errorf("version %q: want a tag like v1.2.0 or `git describe --tags --always --dirty` output", describe)}
}

func sep(v string) string {
	if strings.Contains(v, "+") {
		return "."
	}
	return "+"
}
