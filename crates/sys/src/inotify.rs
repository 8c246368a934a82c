//! Scanner I/O (inotify): owned by the svscan work.
