// Package fileread reads files that a user names (manifests, hosts files,
// secrets, keys, ssh_config) the one safe way: regular files only (a FIFO
// would block for ever, /dev/zero never end) and at most a limit.
package fileread

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNotRegular is wrapped by the error for a path that is not a regular
// file (a directory, a FIFO, a device).
var ErrNotRegular = errors.New("not a regular file")

// Regular reads the regular file at path, of at most limit bytes. Errors
// are *os.PathError.
func Regular(path string, limit int64) ([]byte, error) {
	// Stat before opening: opening a FIFO would block.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &os.PathError{Op: "read", Path: path, Err: ErrNotRegular}
	}
	if fi.Size() > limit {
		return nil, &os.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(b)) > limit { // it grew since the stat
		return nil, &os.PathError{Op: "read", Path: path, Err: tooLarge(limit)}
	}
	return b, nil
}

func tooLarge(limit int64) error {
	if limit >= 1<<20 && limit%(1<<20) == 0 {
		return fmt.Errorf("larger than %d MiB", limit>>20)
	}
	return fmt.Errorf("larger than %d KiB", limit>>10)
}
