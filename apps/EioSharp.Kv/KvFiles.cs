using System.Text;
using EioSharp.Fs;

namespace EioSharp.Kv;

/// <summary>The configuration file and the ACL file through the library's file capability (<c>env.Fs</c>): reads with
/// <see cref="EioPath.Load"/>, atomic durable replacements with <see cref="EioPath.Replace"/>.</summary>
/// <param name="fs">The capability paths are resolved against (<c>env.Fs</c>: absolute paths, or relative to the process's
/// current directory, as Redis opens them).</param>
internal sealed class KvFiles(EioPath fs) : IKvFiles
{
    /// <summary>The mode of a rewritten file before the umask: Redis's 0644 for CONFIG REWRITE and ACL SAVE.</summary>
    internal const UnixFileMode FilePermissions = (UnixFileMode)0x1A4; // 0644

    /// <summary>The largest configuration or ACL file read: a bound, so that a wrong path (a device, a huge file) cannot
    /// take the server's memory.</summary>
    internal const int MaxFileSize = 64 << 20;

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public string ReadAllText(string path)
    {
        byte[] bytes = (fs / path).Load(MaxFileSize);
        ReadOnlySpan<byte> text = bytes;
        ReadOnlySpan<byte> bom = [0xEF, 0xBB, 0xBF]; // as File.ReadAllText, which this replaces
        return s_utf8.GetString(text.StartsWith(bom) ? text[bom.Length..] : text);
    }

    public void ReplaceAllText(string path, string text) => (fs / path).Replace(s_utf8.GetBytes(text), FilePermissions);
}
