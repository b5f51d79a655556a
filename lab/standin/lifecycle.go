package standin

import (
	"errors"
	"slices"
	"time"
)

// Resource states as cattle v0.159.7 runs them. Hosts, credentials
// (registration tokens), generic objects (register) and accounts
// (projects) use the generic processes of
// code/packaging/app-config/src/main/resources/META-INF/cattle/process/defaults.properties
// lines 86-92 (generic.resource.process.0..6, parsed by
// DefaultProcessesParser; spring-process-context.xml: defaultProcesses for
// host, genericObject, account; credential without credential.restore):
//
//	create     requested                                                -> registering -> inactive, delegate activate
//	activate   inactive, registering                                    -> activating  -> active
//	deactivate registering, active, activating, updating-active/-inactive -> deactivating -> inactive
//	remove     requested, inactive, registering, updating-active/-inactive -> removing -> removed
//	purge      removed                                                  -> purging     -> purged
//	update     inactive, active                                         -> updating-X  -> X
//	restore    removed                                                  -> restoring   -> inactive
//
// A request that starts a process sees the transitioning state: the API
// schedules the process (DefaultProcessManager.scheduleProcessInstance),
// which sets it (DefaultProcessInstanceImpl.runWithProcessLock:
// setTransitioning, then runScheduled) and finishes in the background. The
// stand-in shows the transitioning state for a fixed time, then the done
// state. The valid actions of a resource are the processes whose start
// states hold its state (AbstractObjectResourceManager.addActions,
// DefaultObjectMetaDataManager.registerActionDefinitions).
type process struct {
	name  string
	start []string
	trans string // "" for update: updating-<state>
	done  string // "" for update: the state it started from
}

var genericProcesses = []process{
	{"create", []string{"requested"}, "registering", "active"},
	{"activate", []string{"inactive", "registering"}, "activating", "active"},
	{"deactivate", []string{"registering", "active", "activating", "updating-active", "updating-inactive"}, "deactivating", "inactive"},
	{"remove", []string{"requested", "inactive", "registering", "updating-active", "updating-inactive"}, "removing", "removed"},
	{"purge", []string{"removed"}, "purging", "purged"},
	{"update", []string{"inactive", "active"}, "", ""},
	{"restore", []string{"removed"}, "restoring", "inactive"},
}

// Delays of the remove/purge cycle (cattle v0.159.7 defaults):
//   - removeTimeDelay: object.remove.time.delay.seconds=60
//     (process/defaults.properties line 55; SetRemovedFields sets
//     removeTime = removed + delay);
//   - purgeEvery: task.purge.resources.schedule=60
//     (system-services/defaults.properties line 142; PurgeMonitorImpl
//     purges removed resources whose removeTime has passed);
//   - showRemovedFor: api.show.removed.for.seconds=300
//     (api-server/defaults.properties line 55; lists keep a removed
//     resource that long, AbstractObjectResourceManager line 304; by id it
//     is always found).
const (
	removeTimeDelay = 60 * time.Second
	purgeEvery      = 60 * time.Second
	showRemovedFor  = 300 * time.Second
)

// lifecycle is a resource's stored state: State is the state it is in, or
// is going to once Trans (its transitioning state) ends at Until. Times are
// Unix milliseconds, 0 when unset.
type lifecycle struct {
	State      string
	Trans      string
	Until      int64
	Removed    int64
	RemoveTime int64
}

// errActionNotAvailable: the process cannot start in the current state.
var errActionNotAvailable = errors.New("action not available in this state")

// errInvalidAction: no such process for the resource type.
var errInvalidAction = errors.New("no such action")

// newLifecycle is a resource created now whose create process shows
// "registering" for d, then "active".
func newLifecycle(now time.Time, d time.Duration) lifecycle {
	if d <= 0 {
		return lifecycle{State: "active"}
	}
	return lifecycle{State: "active", Trans: "registering", Until: now.Add(d).UnixMilli()}
}

// current is the state shown at now and whether it is a transitioning one.
// A removed resource is purged by the first purge run after its removeTime.
func (l lifecycle) current(now time.Time) (string, bool) {
	ms := now.UnixMilli()
	if l.Trans != "" && ms < l.Until {
		return l.Trans, true
	}
	if l.State == "removed" && l.RemoveTime > 0 && ms >= purgeTime(l.RemoveTime) {
		return "purged", false
	}
	return l.State, false
}

// purgeTime is when the purge task, which runs every purgeEvery, first
// finds a resource whose removeTime is removeTime.
func purgeTime(removeTime int64) int64 {
	every := purgeEvery.Milliseconds()
	return (removeTime/every + 1) * every
}

// listed reports whether a list shows the resource at now.
func (l lifecycle) listed(now time.Time) bool {
	return l.Removed == 0 || now.UnixMilli() < l.Removed+showRemovedFor.Milliseconds()
}

// actions are the names of the processes that can start at now, in the
// order of genericProcesses; excluded names are left out.
func (l lifecycle) actions(now time.Time, exclude ...string) []string {
	cur, _ := l.current(now)
	var out []string
	for _, p := range genericProcesses {
		if p.name != "create" && !slices.Contains(exclude, p.name) && slices.Contains(p.start, cur) {
			out = append(out, p.name)
		}
	}
	return out
}

// run starts process name at now; the transition lasts d.
func (l lifecycle) run(name string, now time.Time, d time.Duration, exclude ...string) (lifecycle, error) {
	i := slices.IndexFunc(genericProcesses, func(p process) bool { return p.name == name })
	if i < 0 || name == "create" || slices.Contains(exclude, name) {
		return l, errInvalidAction
	}
	p := genericProcesses[i]
	cur, _ := l.current(now)
	if !slices.Contains(p.start, cur) {
		return l, errActionNotAvailable
	}
	next := l
	next.State, next.Trans = p.done, p.trans
	if p.name == "update" {
		next.State, next.Trans = cur, "updating-"+cur
	}
	next.Until = now.Add(d).UnixMilli()
	switch p.name {
	case "remove":
		next.Removed = now.UnixMilli()
		next.RemoveTime = now.Add(removeTimeDelay).UnixMilli()
	case "restore":
		next.Removed, next.RemoveTime = 0, 0
	case "purge":
		next.RemoveTime = 0 // purged by hand, not by the task
	}
	return next, nil
}
