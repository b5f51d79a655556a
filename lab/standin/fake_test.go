package standin

import (
	"context"
	"sync"
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
