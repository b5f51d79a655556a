package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/template"
)

// initAnswers are what a starting manifest is made from.
type initAnswers struct {
	Name, URL, DBHost, LB string
	HAProxy               bool
	Nodes, Hosts          []machine
}

type machine struct{ Name, Address string }

// init writes a commented starting manifest from flags, asking on a
// terminal for what they leave out (k0sctl's init).
func (a *app) init(_ context.Context, args []string) int {
	fs := a.newFlags("init")
	var ans initAnswers
	var nodes, hosts, out string
	var force bool
	fs.StringVar(&ans.Name, "name", "", "the cluster's name (a DNS label)")
	fs.StringVar(&nodes, "nodes", "", "the server nodes: ADDRESS or NAME=ADDRESS, comma-separated (1, 3 or 5)")
	fs.StringVar(&hosts, "hosts", "", "the hosts that join: ADDRESS or NAME=ADDRESS, comma-separated")
	fs.StringVar(&ans.DBHost, "db-host", "", "the MySQL server")
	fs.StringVar(&ans.LB, "lb", "", "the load balancer's address")
	fs.BoolVar(&ans.HAProxy, "haproxy", false, "haplan configures HAProxy on the load balancer (over SSH)")
	fs.StringVar(&ans.URL, "url", "", "the host registration URL (default https://<lb>)")
	fs.StringVar(&out, "o", "cluster.yaml", "where to write it; - for standard output")
	fs.BoolVar(&force, "force", false, "overwrite an existing file")
	if code, done := a.parseOnlyFlags(fs, args); done {
		return code
	}
	q := &initAsker{a: a, in: bufio.NewReader(a.stdin)}
	for _, item := range []struct {
		dst           *string
		question, def string
	}{
		{&ans.Name, "Cluster name", "rancher"},
		{&nodes, "Server node addresses (1, 3 or 5, comma-separated)", ""},
		{&ans.DBHost, "MySQL server address", ""},
		{&ans.LB, "Load balancer address", ""},
	} {
		if err := q.ask(item.dst, item.question, item.def); err != nil {
			fmt.Fprintf(a.stderr, "haplan init: %v\n", err)
			return exitError
		}
	}
	if ans.URL == "" {
		ans.URL = "https://" + ans.LB
	}
	ans.Nodes, ans.Hosts = machines(nodes, "rs"), machines(hosts, "h")
	text, err := renderInit(ans)
	if err != nil {
		fmt.Fprintf(a.stderr, "haplan init: %v\n", err)
		return exitError
	}
	if out == "-" {
		_, _ = io.WriteString(a.stdout, text)
		return exitOK
	}
	if err := writeNew(out, text, force); err != nil {
		fmt.Fprintf(a.stderr, "haplan init: %v\n", err)
		return exitError
	}
	fmt.Fprintf(a.stdout, "Wrote %s. Next:\n  export HAPLAN_DB_PASSWORD=... HAPLAN_DB_ADMIN_PASSWORD=...\n  haplan validate -f %[1]s && haplan check -f %[1]s && haplan plan -f %[1]s\n", out)
	return exitOK
}

// machines reads "ADDRESS" or "NAME=ADDRESS" items; unnamed ones are
// prefix1, prefix2, ... by position.
func machines(list, prefix string) []machine {
	var out []machine
	for i, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, addr, ok := strings.Cut(item, "=")
		if !ok {
			name, addr = fmt.Sprintf("%s%d", prefix, i+1), item
		}
		out = append(out, machine{Name: strings.TrimSpace(name), Address: strings.TrimSpace(addr)})
	}
	return out
}

var initTemplate = template.Must(template.New("init").Parse(`# Written by 'haplan init'. Every field not written here takes its default:
# see examples/cluster.yaml for all of them, explained. Then:
#   haplan validate   (offline: the pull-request check)
#   haplan check      (the machines and the database, read-only)
#   haplan plan       (what apply would do)
# Editor completion: haplan schema > cluster.schema.json, and a first line
# "# yaml-language-server: $schema=cluster.schema.json".
name: {{.Name}}

rancher:
  image: rancher/server:v1.0.1
  # Hosts and agents are bound to it: choose it once.
  hostRegistrationUrl: {{.URL}}

# Every machine, unless it says otherwise; known hosts only
# (~/.ssh/known_hosts).
ssh:
  user: root
  hostKeyPolicy: strict

database:
  host: {{.DBHost}}
  name: cattle
  user: cattle
  # The application user's password.
  password: {env: HAPLAN_DB_PASSWORD}
  # The admin account creates the database, the user and the grants.
  admin:
    user: root
    password: {env: HAPLAN_DB_ADMIN_PASSWORD}

# Sends 80 and 443 to every node.
loadBalancer:
  address: {{.LB}}
{{- if .HAProxy}}
  # haplan configures HAProxy there, over SSH.
  haproxy:
    configPath: /etc/haproxy/haproxy.cfg
    reloadCommand: service haproxy reload || service haproxy start
{{- end}}

# 1, 3 or 5 Rancher server nodes.
nodes:
{{- range .Nodes}}
  - {name: {{.Name}}, address: {{.Address}}}
{{- end}}
{{- if .Hosts}}

# Machines that join the cluster: the CA, then "Add Host".
hosts:
{{- range .Hosts}}
  - {name: {{.Name}}, address: {{.Address}}}
{{- end}}
{{- end}}
`))

func renderInit(ans initAnswers) (string, error) {
	for _, v := range []string{ans.Name, ans.DBHost, ans.LB} {
		if strings.ContainsAny(v, "\n\r#{}[],:'\" ") {
			return "", fmt.Errorf("%q: not a name or address", v)
		}
	}
	if strings.ContainsAny(ans.URL, "\n\r#{}[],'\" ") {
		return "", fmt.Errorf("%q: not a URL", ans.URL)
	}
	for _, m := range append(append([]machine{}, ans.Nodes...), ans.Hosts...) {
		if strings.ContainsAny(m.Name+m.Address, "\n#{}[],'\" ") {
			return "", fmt.Errorf("%q: not a name and address", m.Name+"="+m.Address)
		}
	}
	var b strings.Builder
	err := initTemplate.Execute(&b, ans)
	return b.String(), err
}

// initAsker asks init's questions on a terminal (on stderr: with -o - the
// manifest is stdout) and takes the defaults without one.
type initAsker struct {
	a  *app
	in *bufio.Reader
}

// ask fills dst unless a flag did: the answer, or def.
func (q *initAsker) ask(dst *string, question, def string) error {
	if *dst != "" {
		return nil
	}
	if !q.a.stdinTTY {
		if def == "" {
			return fmt.Errorf("%s: give it as a flag (see haplan init --help), or run haplan init on a terminal", question)
		}
		*dst = def
		return nil
	}
	if def != "" {
		fmt.Fprintf(q.a.stderr, "%s [%s]: ", question, def)
	} else {
		fmt.Fprintf(q.a.stderr, "%s: ", question)
	}
	line, err := q.in.ReadString('\n')
	if err != nil && line == "" {
		return errors.New("no answer")
	}
	if *dst = strings.TrimSpace(line); *dst == "" {
		*dst = def
	}
	if *dst == "" {
		return fmt.Errorf("%s is needed", question)
	}
	return nil
}

// writeNew writes text to path, refusing an existing file unless force.
func writeNew(path, text string, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; --force overwrites it", path)
	}
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
