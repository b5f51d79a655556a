package standin

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"
)

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
// lab machines). Like the real template it quotes nothing: the values go
// into unquoted here-documents (script.ftl lines 14-24, "export
// CATTLE_DB_CATTLE_USERNAME=${dbUser}" inside "<< EOF"), and the ha
// entrypoint sources server.conf (rancher v1.0.1 server/bin/ha), so a
// space, $, backtick or quote in a value breaks the node's configuration.
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
cat > /var/lib/rancher/etc/server.conf << EOF
export CATTLE_HA_CLUSTER_SIZE={{.Input.ClusterSize}}
export CATTLE_HA_HOST_REGISTRATION_URL={{.Input.HostRegistrationURL}}
export CATTLE_HA_CONTAINER_PREFIX=rancher-ha-

export CATTLE_DB_CATTLE_MYSQL_HOST={{.DB.Host}}
export CATTLE_DB_CATTLE_MYSQL_PORT={{.DB.Port}}
export CATTLE_DB_CATTLE_MYSQL_NAME={{.DB.Name}}
export CATTLE_DB_CATTLE_USERNAME={{.DB.User}}
export CATTLE_DB_CATTLE_PASSWORD={{.EncryptedPassword}}

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
EOF
{{- if .Input.Cert}}

echo Creating /var/lib/rancher/etc/ssl/server-cert.pem
cat > /var/lib/rancher/etc/ssl/server-cert.pem << EOF
{{pem .Input.Cert}}
EOF
{{- end}}
{{- if .Input.Key}}

echo Creating /var/lib/rancher/etc/ssl/server-key.pem
cat > /var/lib/rancher/etc/ssl/server-key.pem << EOF
{{pem .Input.Key}}
EOF
{{- end}}
{{- if .Input.CertChain}}

echo Creating /var/lib/rancher/etc/ssl/ca.crt
cat > /var/lib/rancher/etc/ssl/ca.crt << EOF
{{pem .Input.CertChain}}
EOF
{{- end}}

echo Creating /var/lib/rancher/etc/server/encryption.key
if [ -e /var/lib/rancher/etc/server/encryption.key ]; then
    mv /var/lib/rancher/etc/server/encryption.key /var/lib/rancher/etc/server/encryption.key.$(date '+%s')
fi
cat > /var/lib/rancher/etc/server/encryption.key << EOF
{{.EncryptionKey}}
EOF

echo Creating /var/lib/rancher/bin/rancher-ha-start.sh
cat > /var/lib/rancher/bin/rancher-ha-start.sh << "EOF"
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
EOF

chmod +x /var/lib/rancher/bin/rancher-ha-start.sh

echo Running: /var/lib/rancher/bin/rancher-ha-start.sh $IMAGE
echo To re-run please execute: /var/lib/rancher/bin/rancher-ha-start.sh $IMAGE
exec /var/lib/rancher/bin/rancher-ha-start.sh $IMAGE
`

var tmpl = template.Must(template.New("rancher-ha.sh").Funcs(template.FuncMap{
	"pem": func(s string) string { return strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n") },
}).Parse(scriptTemplate))

// RenderScript renders rancher-ha.sh. Like cattle it checks nothing: a
// value that ends a here-document or holds shell syntax goes into the
// script as it is.
func RenderScript(d ScriptData) ([]byte, error) {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("render rancher-ha.sh: %w", err)
	}
	return buf.Bytes(), nil
}
