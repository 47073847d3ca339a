using EioSharp.Backends.Uring;
using EioSharp.Net;
using Microsoft.Win32.SafeHandles;

namespace EioSharp.Fs;

/// <summary>
/// Use-counted ownership of an open file's descriptor (S29, as <see cref="UseCountedHandle"/> for sockets): every
/// <see cref="EioFile"/> operation holds a use, and the descriptor is closed once the file is closed and no operation uses
/// it. The close itself is an IORING_OP_CLOSE on the ring when it happens on a domain of the io_uring backend whose kernel
/// has the opcode (Eio_linux closes through the ring too), else <c>close</c> through the <see cref="SafeFileHandle"/>.
/// </summary>
internal sealed class FileFd(SafeFileHandle handle) : UseCountedHandle
{
    protected override void Release()
    {
        bool added = false;
        try
        {
            // A reference of our own, so that the descriptor number read below stays ours until the ring has it.
            handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            return;
        }

        int fd = (int)handle.DangerousGetHandle();
        if (UringFiles.TryCloseOnRing(fd))
        {
            // The ring closes it: the handle must not close the number again (another file may have it by then).
            handle.SetHandleAsInvalid();
            handle.DangerousRelease();
            return;
        }

        handle.DangerousRelease();
        handle.Dispose();
    }
}
