package standin

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"time"
)

// cachedSettings are the settings cattle's API reads from its Archaius
// cache rather than from the database: the haConfig resource's enabled and
// clusterSize (HaConfigManager.getHaConfig reads HA_ENABLED and
// HA_CLUSTER_SIZE, both DynamicProperty values), access control, and
// api.host (ServerContext.HOST), which registration URLs are built from.
var cachedSettings = []string{SettingHAEnabled, SettingClusterSize, SettingSecurityEnabled, SettingAPIHost}

// DefaultSettingsRefresh is how often the cache is reloaded from the
// database without a write through this server: Archaius's polling
// scheduler, whose defaults (delayMills 60000) cattle does not change
// (no archaius.fixedDelayPollingScheduler.* property in cattle v0.159.7).
const DefaultSettingsRefresh = 60 * time.Second

// settingsCache is one server's view of the cached settings. As in cattle,
// a write through the API (SettingsUtils.changeSetting, createscript) goes
// to the database at once, but the cache is reloaded only once the
// handler has built its answer (DeferredUtils.defer(ArchaiusUtil.refresh),
// run when ApiRequestFilter's managed context ends), and otherwise on a
// timer. So the answer to the enabled PUT carries the old value; the
// answer is still in Jetty's output buffer while the deferred refresh
// runs, so a request sent after it sees the new value on the same server,
// and a write through another server shows here only after the timer.
type settingsCache struct {
	every time.Duration

	// loading serialises refreshes, so that a slow load that read the
	// database before a write cannot overwrite the load made after it.
	loading sync.Mutex
	mu      sync.Mutex
	vals    map[string]string
	loaded  time.Time
}

// get returns a cached setting, reloading the cache when the timer says so.
func (c *settingsCache) get(ctx context.Context, be Backend, name string) (string, bool, error) {
	c.mu.Lock()
	stale := c.vals == nil || c.every > 0 && time.Since(c.loaded) >= c.every
	c.mu.Unlock()
	if stale {
		if err := c.refresh(ctx, be); err != nil {
			return "", false, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.vals[name]
	return v, ok, nil
}

func (c *settingsCache) isLoaded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vals != nil
}

// refresh reloads every cached setting from the database.
func (c *settingsCache) refresh(ctx context.Context, be Backend) error {
	c.loading.Lock()
	defer c.loading.Unlock()
	vals := map[string]string{}
	for _, n := range cachedSettings {
		v, ok, err := be.Setting(ctx, n)
		if err != nil {
			return err
		}
		if ok {
			vals[n] = v
		}
	}
	c.mu.Lock()
	c.vals, c.loaded = vals, time.Now()
	c.mu.Unlock()
	return nil
}

type deferKey struct{}

// deferred collects what a request wants done after its response.
type deferred struct{ refresh bool }

// deferRefresh asks for the settings cache to be reloaded once the
// response to r has been written.
func deferRefresh(r *http.Request) {
	if d, ok := r.Context().Value(deferKey{}).(*deferred); ok {
		d.refresh = true
	}
}

// withDeferred runs h with its answer held back, does what h deferred,
// then sends the answer.
func (a *API) withDeferred(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The real server loads its settings at startup, before it serves.
		if !a.cache.isLoaded() {
			if err := a.cache.refresh(r.Context(), a.Store); err != nil {
				a.internal(w, r, err)
				return
			}
		}
		d := &deferred{}
		held := &heldResponse{header: w.Header(), status: http.StatusOK}
		h.ServeHTTP(held, r.WithContext(context.WithValue(r.Context(), deferKey{}, d)))
		if d.refresh {
			if err := a.cache.refresh(context.WithoutCancel(r.Context()), a.Store); err != nil && a.Log != nil {
				a.Log.Printf("Failed to refresh settings: %v", err)
			}
		}
		w.WriteHeader(held.status)
		_, _ = w.Write(held.body.Bytes())
	})
}

// heldResponse keeps an answer until the request's deferred work is done,
// as the servlet container's output buffer does for cattle's small answers.
type heldResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(status int) {
	if !h.wrote {
		h.status, h.wrote = status, true
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	h.wrote = true
	return h.body.Write(b)
}
