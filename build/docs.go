package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// genMan writes one gzipped section 1 page per command and subcommand
// (mnpool.1.gz, mnpool-node-add.1.gz, snmove.1.gz, ...). The separate
// programs also get an mnpool-PROGRAM alias page (`man mnpool-snmove`),
// since they are the pool's versions of xCAT commands.
func genMan(dir string, progs []*cobra.Command) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, root := range progs {
		root.DisableAutoGenTag = true
		if err := genManTree(dir, root); err != nil {
			return err
		}
		if root.Name() != "mnpool" {
			alias := fmt.Sprintf(".so man1/%s.1\n", root.Name())
			if err := writeGz(filepath.Join(dir, "mnpool-"+root.Name()+".1.gz"), []byte(alias)); err != nil {
				return err
			}
		}
	}
	return nil
}

func genManTree(dir string, cmd *cobra.Command) error {
	for _, c := range cmd.Commands() {
		if !c.IsAvailableCommand() || c.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := genManTree(dir, c); err != nil {
			return err
		}
	}
	hdr := &doc.GenManHeader{Title: strings.ToUpper(strings.ReplaceAll(cmd.CommandPath(), " ", "-")), Section: "1",
		Source: "mnpool", Manual: "mnpool manual"}
	var b bytes.Buffer
	if err := doc.GenMan(cmd, hdr, &b); err != nil {
		return err
	}
	name := strings.ReplaceAll(cmd.CommandPath(), " ", "-") + ".1.gz"
	return writeGz(filepath.Join(dir, name), b.Bytes())
}

// writeGz writes data gzipped, without a name or time in the header, so
// the same source gives the same file.
func writeGz(path string, data []byte) error {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// genCompletion writes the bash, zsh and fish completion of every
// program: DIR/bash/PROG, DIR/zsh/_PROG, DIR/fish/PROG.fish. They call the
// program (`PROG __complete ...`) for the names of nodes, groups,
// members, networks and site keys, read from the pool database.
func genCompletion(dir string, progs []*cobra.Command) error {
	for _, sub := range []string{"bash", "zsh", "fish"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for _, root := range progs {
		n := root.Name()
		var bash, zsh, fish bytes.Buffer
		if err := root.GenBashCompletionV2(&bash, true); err != nil {
			return err
		}
		if err := root.GenZshCompletion(&zsh); err != nil {
			return err
		}
		if err := root.GenFishCompletion(&fish, true); err != nil {
			return err
		}
		for path, data := range map[string][]byte{
			filepath.Join(dir, "bash", n):         bash.Bytes(),
			filepath.Join(dir, "zsh", "_"+n):      zsh.Bytes(),
			filepath.Join(dir, "fish", n+".fish"): fish.Bytes(),
		} {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
