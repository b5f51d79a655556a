package standin

import (
	"net"
	"strings"
)

// defaultRouteIP mimics `ip route get 8.8.8.8 | grep via | awk '{print $7}'`
// without sending anything: it finds the default route with a gateway in
// /proc/net/route and returns the first IPv4 address of its interface.
// It returns "" when there is no default gateway.
func defaultRouteIP(routeTable string, ifaceIP func(string) string) string {
	for i, line := range strings.Split(routeTable, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 3 {
			continue // header or blank
		}
		if f[1] == "00000000" && f[2] != "00000000" {
			return ifaceIP(f[0])
		}
	}
	return ""
}

// interfaceIPv4 returns the first IPv4 address of the named interface.
func interfaceIPv4(name string) string {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return ""
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}
