package manifests

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a Rancher server release, read from an image's tag
// ("rancher/server:v1.0.1" is 1.0.1).
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders releases.
func (v Version) Less(w Version) bool {
	if v.Major != w.Major {
		return v.Major < w.Major
	}
	if v.Minor != w.Minor {
		return v.Minor < w.Minor
	}
	return v.Patch < w.Patch
}

var versionTagRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?$`)

// ImageTag is the tag of an image reference ("" for a digest or none).
func ImageTag(img string) string {
	if strings.Contains(img, "@") {
		return ""
	}
	last := img[strings.LastIndex(img, "/")+1:]
	if i := strings.LastIndex(last, ":"); i > 0 {
		return last[i+1:]
	}
	return ""
}

// ServerVersion reads the release from a rancher/server image's tag; ok
// is false when the tag is not a version (a digest, "latest", a site's
// own name).
func ServerVersion(img string) (Version, bool) { return ParseRelease(ImageTag(img)) }

// ParseRelease reads a release from a tag such as "v1.0.1" or "1.1.4".
func ParseRelease(tag string) (Version, bool) {
	m := versionTagRE.FindStringSubmatch(tag)
	if m == nil {
		return Version{}, false
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, true
}

// HAScriptRelease reports whether v is a release whose HA is rancher-ha.sh
// (1.0.x and 1.1.x): from 1.2 on HA is another design (no script, an
// advertise address, port 9345), a migration rather than an upgrade
// (docs/rancher-1.0-ha.md section 9).
func HAScriptRelease(v Version) bool { return v.Major == 1 && (v.Minor == 0 || v.Minor == 1) }
