package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// DownOptions says what Down removes besides the containers, volumes and
// network.
type DownOptions struct {
	Dir    string // lab/out; empty means DefaultDir()
	Images bool   // also the cached host image and the registry tag
	Log    func(format string, args ...any)
}

// Down removes exactly what the lab created: Docker objects labelled
// haplan.lab=1 and the output directory.
func Down(ctx context.Context, o DownOptions) error {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	unlock, err := lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	var errs []error
	filter := "label=" + LabelKey + "=1"
	if ids, err := docker(ctx, "ps", "-aq", "--filter", filter); err != nil {
		errs = append(errs, fmt.Errorf("list containers: %w", err))
	} else if ids != "" {
		logf("removing %d containers", len(strings.Fields(ids)))
		if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			errs = append(errs, fmt.Errorf("remove containers: %w", err))
		}
	}
	if vs, err := docker(ctx, "volume", "ls", "-q", "--filter", filter); err != nil {
		errs = append(errs, fmt.Errorf("list volumes: %w", err))
	} else if vs != "" {
		logf("removing %d volumes", len(strings.Fields(vs)))
		if _, err := docker(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(vs)...)...); err != nil {
			errs = append(errs, fmt.Errorf("remove volumes: %w", err))
		}
	}
	if ns, err := docker(ctx, "network", "ls", "-q", "--filter", filter); err != nil {
		errs = append(errs, fmt.Errorf("list networks: %w", err))
	} else if ns != "" {
		logf("removing network %s", NetworkName)
		if _, err := docker(ctx, append([]string{"network", "rm"}, strings.Fields(ns)...)...); err != nil {
			errs = append(errs, fmt.Errorf("remove network: %w", err))
		}
	}
	if o.Images {
		if is, err := docker(ctx, "images", "-q", "--filter", filter); err != nil {
			errs = append(errs, fmt.Errorf("list images: %w", err))
		} else if is != "" {
			logf("removing host images")
			if _, err := docker(ctx, append([]string{"rmi", "-f"}, strings.Fields(is)...)...); err != nil {
				errs = append(errs, fmt.Errorf("remove images: %w", err))
			}
		}
		// The registry tag is the lab's; the rancher/server image is the
		// stand-in build's and stays.
		_, _ = docker(ctx, "rmi", RegistryAddr+"/"+RancherImage)
		_, _ = docker(ctx, "rmi", RegistryAddr+"/"+AgentImage)
		_, _ = docker(ctx, "rmi", RegistryAddr+"/"+AgentInstanceImage)
	}
	dir := o.Dir
	if dir == "" {
		d, err := DefaultDir()
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		dir = d
	}
	logf("removing %s", dir)
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
}
