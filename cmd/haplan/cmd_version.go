package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// buildVersion is what a binary knows of how it was built.
type buildVersion struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

// readBuildVersion reads the module version and, for a build from a work
// tree, the VCS settings Go records (debug.ReadBuildInfo).
func readBuildVersion() buildVersion {
	v := buildVersion{Version: "(devel)", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// haplanVersion is the one-word version saved plans record.
func haplanVersion() string { return readBuildVersion().Version }

func (a *app) version(args []string) int {
	fs := a.newFlags("version")
	asJSON := fs.Bool("json", false, "as JSON")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	v := readBuildVersion()
	if *asJSON {
		if err := writeJSON(a.stdout, v); err != nil {
			return exitError
		}
		return exitOK
	}
	line := "haplan " + v.Version
	if v.Revision != "" {
		rev := v.Revision[:min(12, len(v.Revision))]
		if v.Modified {
			rev += "+dirty"
		}
		line += " (" + rev
		if v.Time != "" {
			line += ", " + v.Time
		}
		line += ")"
	}
	fmt.Fprintf(a.stdout, "%s %s %s\n", line, v.GoVersion, v.Platform)
	return exitOK
}
