package standin

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// heredocEnd ends every here-document in the script. It is quoted in the
// script ('RANCHER_HA_EOF'), so nothing inside is expanded by the shell.
const heredocEnd = "RANCHER_HA_EOF"

// ScriptData is everything the rancher-ha.sh template needs.
type ScriptData struct {
	Input ScriptInput
	DB    DBConfig // Password is ignored; EncryptedPassword is written instead
	// EncryptedPassword is the DB password as Encrypt returns it.
	EncryptedPassword string
	// EncryptionKey is the base64 AES key (EncodeKey).
	EncryptionKey string
}

// scriptTemplate mirrors cattle v0.159.7 resources/content/haconfig/script.ftl,
// except that rancher-ha-start.sh does not pass --privileged (it fails on the
// lab machines) and values are shell-quoted when they need it.
const scriptTemplate = `#!/bin/sh
set -e

umask 077

IMAGE=$1
if [ "$IMAGE" = "" ]; then
    IMAGE=rancher/server
fi

mkdir -p /var/lib/rancher/etc/server
mkdir -p /var/lib/rancher/etc/ssl
mkdir -p /var/lib/rancher/bin

echo Creating /var/lib/rancher/etc/server.conf
cat > /var/lib/rancher/etc/server.conf << 'RANCHER_HA_EOF'
export CATTLE_HA_CLUSTER_SIZE={{.Input.ClusterSize}}
export CATTLE_HA_HOST_REGISTRATION_URL={{sh .Input.HostRegistrationURL}}
export CATTLE_HA_CONTAINER_PREFIX=rancher-ha-

export CATTLE_DB_CATTLE_MYSQL_HOST={{sh .DB.Host}}
export CATTLE_DB_CATTLE_MYSQL_PORT={{.DB.Port}}
export CATTLE_DB_CATTLE_MYSQL_NAME={{sh .DB.Name}}
export CATTLE_DB_CATTLE_USERNAME={{sh .DB.User}}
export CATTLE_DB_CATTLE_PASSWORD={{sh .EncryptedPassword}}

export CATTLE_HA_PORT_REDIS={{.Input.RedisPort}}
export CATTLE_HA_PORT_SWARM={{.Input.SwarmPort}}
export CATTLE_HA_PORT_HTTP={{.Input.HTTPPort}}
export CATTLE_HA_PORT_HTTPS={{.Input.HTTPSPort}}
export CATTLE_HA_PORT_PP_HTTP={{.Input.PPHTTPPort}}
export CATTLE_HA_PORT_PP_HTTPS={{.Input.PPHTTPSPort}}
export CATTLE_HA_PORT_ZK_CLIENT={{.Input.ZookeeperClientPort}}
export CATTLE_HA_PORT_ZK_QUORUM={{.Input.ZookeeperQuorumPort}}
export CATTLE_HA_PORT_ZK_LEADER={{.Input.ZookeeperLeaderPort}}

# Uncomment below to force HA enabled and not require one to set it in the UI
# export CATTLE_HA_ENABLED=true
RANCHER_HA_EOF
{{- if .Input.Cert}}

echo Creating /var/lib/rancher/etc/ssl/server-cert.pem
cat > /var/lib/rancher/etc/ssl/server-cert.pem << 'RANCHER_HA_EOF'
{{pem .Input.Cert}}
RANCHER_HA_EOF
{{- end}}
{{- if .Input.Key}}

echo Creating /var/lib/rancher/etc/ssl/server-key.pem
cat > /var/lib/rancher/etc/ssl/server-key.pem << 'RANCHER_HA_EOF'
{{pem .Input.Key}}
RANCHER_HA_EOF
{{- end}}
{{- if .Input.CertChain}}

echo Creating /var/lib/rancher/etc/ssl/ca.crt
cat > /var/lib/rancher/etc/ssl/ca.crt << 'RANCHER_HA_EOF'
{{pem .Input.CertChain}}
RANCHER_HA_EOF
{{- end}}

echo Creating /var/lib/rancher/etc/server/encryption.key
if [ -e /var/lib/rancher/etc/server/encryption.key ]; then
    mv /var/lib/rancher/etc/server/encryption.key /var/lib/rancher/etc/server/encryption.key.$(date '+%s')
fi
cat > /var/lib/rancher/etc/server/encryption.key << 'RANCHER_HA_EOF'
{{.EncryptionKey}}
RANCHER_HA_EOF

echo Creating /var/lib/rancher/bin/rancher-ha-start.sh
cat > /var/lib/rancher/bin/rancher-ha-start.sh << 'RANCHER_HA_EOF'
#!/bin/sh
set -e

IMAGE=$1
if [ "$IMAGE" = "" ]; then
    echo Usage: $0 DOCKER_IMAGE
    exit 1
fi

docker rm -fv rancher-ha >/dev/null 2>&1 || true
ID=$(docker run --restart=always -d -v /var/run/docker.sock:/var/run/docker.sock --name rancher-ha --net host -v /var/lib/rancher/etc:/var/lib/rancher/etc $IMAGE ha)

echo Started container rancher-ha $ID
echo Run the below to see the logs
echo
echo docker logs -f rancher-ha
RANCHER_HA_EOF

chmod +x /var/lib/rancher/bin/rancher-ha-start.sh

echo Running: /var/lib/rancher/bin/rancher-ha-start.sh $IMAGE
echo To re-run please execute: /var/lib/rancher/bin/rancher-ha-start.sh $IMAGE
exec /var/lib/rancher/bin/rancher-ha-start.sh $IMAGE
`

var (
	shellSafe = regexp.MustCompile(`^[A-Za-z0-9_./:@%+,=-]+$`)
	tmpl      = template.Must(template.New("rancher-ha.sh").Funcs(template.FuncMap{
		"sh":  shellQuote,
		"pem": func(s string) string { return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n") },
	}).Parse(scriptTemplate))
)

// shellQuote returns s unchanged when it needs no quoting, else single-quoted.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RenderScript renders rancher-ha.sh. Input that would break out of a
// here-document is refused with a ValidationError.
func RenderScript(d ScriptData) ([]byte, error) {
	fields := []struct{ name, value string }{
		{"cert", d.Input.Cert}, {"key", d.Input.Key}, {"certChain", d.Input.CertChain},
		{"hostRegistrationUrl", d.Input.HostRegistrationURL},
	}
	for _, f := range fields {
		if strings.Contains(f.value, heredocEnd) || (f.name == "hostRegistrationUrl" && strings.ContainsAny(f.value, "\r\n")) {
			return nil, &ValidationError{Code: codeInvalidFormat, Field: f.name}
		}
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render rancher-ha.sh: %w", err)
	}
	return buf.Bytes(), nil
}
