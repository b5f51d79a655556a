package standin

import (
	"context"
	"maps"
	"sync"
	"time"
)

// memBackend is an in-memory Backend.
type memBackend struct {
	mu       sync.Mutex
	settings map[string]string
	certs    map[string]CertBundle
}

func newMemBackend() *memBackend {
	return &memBackend{settings: map[string]string{}, certs: map[string]CertBundle{}}
}

func (m *memBackend) Setting(_ context.Context, name string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.settings[name]
	return v, ok, nil
}

func (m *memBackend) SetSetting(_ context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.settings[name] = value
	return nil
}

func (m *memBackend) DeleteSetting(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.settings, name)
	return nil
}

func (m *memBackend) Certificate(_ context.Context, name string) (CertBundle, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.certs[name]
	return b, ok, nil
}

// memRegistry is an in-memory Registry.
type memRegistry struct {
	mu       sync.Mutex
	creds    []Credential
	agents   []AgentRecord
	hosts    []HostRecord
	projects []ProjectRecord
	nextHost int64
}

func newMemRegistry() *memRegistry { return &memRegistry{nextHost: 1000} }

func (m *memRegistry) Credentials(context.Context) ([]Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Credential(nil), m.creds...), nil
}

func (m *memRegistry) AddCredential(_ context.Context, c *Credential) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.creds {
		if c.AutoKey != "" && x.AutoKey == c.AutoKey {
			*c = x
			return nil
		}
	}
	c.ID = int64(len(m.creds) + 1)
	m.creds = append(m.creds, *c)
	return nil
}

func (m *memRegistry) SetCredentialLife(_ context.Context, id int64, l lifecycle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.creds {
		if m.creds[i].ID == id {
			m.creds[i].Life = l
		}
	}
	return nil
}

func (m *memRegistry) Agents(context.Context) ([]AgentRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]AgentRecord(nil), m.agents...), nil
}

func (m *memRegistry) AddAgent(_ context.Context, a *AgentRecord) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.agents {
		if x.Key == a.Key {
			*a = x
			return true, nil
		}
	}
	a.ID = int64(len(m.agents) + 1)
	m.agents = append(m.agents, *a)
	return false, nil
}

func (m *memRegistry) SetAgentState(_ context.Context, id int64, state string, until int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.agents {
		if m.agents[i].ID == id {
			m.agents[i].State, m.agents[i].StateUntil = state, until
		}
	}
	return nil
}

func (m *memRegistry) PingAgent(_ context.Context, id int64, at int64, has string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.agents {
		if m.agents[i].ID == id {
			m.agents[i].LastPing, m.agents[i].HostAgentState = at, has
		}
	}
	return nil
}

func (m *memRegistry) Hosts(context.Context) ([]HostRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]HostRecord, len(m.hosts))
	for i, h := range m.hosts {
		h.Labels = maps.Clone(h.Labels)
		out[i] = h
	}
	return out, nil
}

func (m *memRegistry) AddHost(_ context.Context, h *HostRecord) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.hosts {
		if x.AgentID == h.AgentID && x.ReportedUUID == h.ReportedUUID {
			*h = x
			h.Labels = maps.Clone(x.Labels)
			return true, nil
		}
	}
	h.ID = m.nextHost
	m.nextHost++
	x := *h
	x.Labels = maps.Clone(h.Labels)
	m.hosts = append(m.hosts, x)
	return false, nil
}

func (m *memRegistry) ReportHost(_ context.Context, id int64, hostname, ip string, labels map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.hosts {
		if m.hosts[i].ID == id {
			m.hosts[i].Hostname, m.hosts[i].IP, m.hosts[i].Labels = hostname, ip, maps.Clone(labels)
		}
	}
	return nil
}

func (m *memRegistry) SetHostLife(_ context.Context, id int64, l lifecycle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.hosts {
		if m.hosts[i].ID == id {
			m.hosts[i].Life = l
		}
	}
	return nil
}

func (m *memRegistry) Projects(context.Context) ([]ProjectRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]ProjectRecord(nil), m.projects...), nil
}

func (m *memRegistry) AddProject(_ context.Context, p *ProjectRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	p.ID = int64(10 + len(m.projects))
	m.projects = append(m.projects, *p)
	return nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
