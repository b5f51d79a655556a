package dockerapi

import (
	"bufio"
	"strconv"
	"strings"
)

// ParsePS reads `docker ps --format '{{.Names}}\t{{.Ports}}'`, where
// Ports looks like "0.0.0.0:18080->8080/tcp, :::18080->8080/tcp, 8080/tcp"
// or "0.0.0.0:8000-8001->8000-8001/tcp".
func ParsePS(out string) []Container {
	var cs []Container
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		name, ports, _ := strings.Cut(sc.Text(), "\t")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		c := Container{Name: name, Status: "running"}
		seen := map[int]bool{}
		for _, p := range strings.Split(ports, ",") {
			p = strings.TrimSpace(p)
			host, _, ok := strings.Cut(p, "->")
			if !ok || !strings.HasSuffix(p, "/tcp") {
				continue // not published, or UDP
			}
			i := strings.LastIndexByte(host, ':')
			lo, hi, ok := portRange(host[i+1:])
			if !ok {
				continue
			}
			for n := lo; n <= hi; n++ {
				if !seen[n] {
					seen[n] = true
					c.Ports = append(c.Ports, n)
				}
			}
		}
		cs = append(cs, c)
	}
	return cs
}

// portRange reads "8080" or "8000-8001".
func portRange(s string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.Atoi(a)
	if err != nil || lo <= 0 || lo > 65535 {
		return 0, 0, false
	}
	if !isRange {
		return lo, lo, true
	}
	hi, err = strconv.Atoi(b)
	if err != nil || hi < lo || hi > 65535 {
		return 0, 0, false
	}
	return lo, hi, true
}
