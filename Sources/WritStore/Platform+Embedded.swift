// The parts of the Glibc overlay WritStore and WritModule use, for the Embedded Swift build of
// pam_writ.so (scripts/build-module.sh), which imports the C library directly.
#if !canImport(Glibc)
import CLibc

package var errno: Int32 { writ_errno() }

package func open(_ path: UnsafePointer<CChar>, _ flags: Int32) -> Int32 { writ_open(path, flags, 0) }

package func open(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    writ_open(path, flags, mode)
}

#endif
