// The parts of the Glibc overlay this module uses, for the Embedded Swift build of pam_writ.so
// (scripts/build-module.sh), which imports the C library directly.
#if !canImport(Glibc)
import CLibc

var errno: Int32 { writ_errno() }

func open(_ path: UnsafePointer<CChar>, _ flags: Int32) -> Int32 { writ_open(path, flags, 0) }

func open(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 { writ_open(path, flags, mode) }

func openat(_ fd: Int32, _ path: UnsafePointer<CChar>, _ flags: Int32) -> Int32 { writ_openat(fd, path, flags) }
#endif
