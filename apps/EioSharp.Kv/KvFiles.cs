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
        return Decode((fs / path).Load(MaxFileSize));
    }

    /// <summary>Reads the configuration file at <paramref name="path"/> and its includes through <paramref name="fs"/>
    /// (<see cref="KvConfigFile.ReadAsync"/> with <see cref="EioPath.LoadAsync"/> and <see cref="EioPath.ReadDirectoryAsync"/>).</summary>
    /// <exception cref="KvConfigException">A file cannot be read or a line is malformed.</exception>
    public static Task<List<KvConfigLine>> ReadConfigAsync(EioPath fs, string path) =>
        KvConfigFile.ReadAsync(path,
            async file => Decode(await (fs / file).LoadAsync(MaxFileSize)),
            async dir =>
            {
                EioPath d = fs / dir;
                return await d.IsDirectoryAsync() ? await d.ReadDirectoryAsync() : [];
            });

    private static string Decode(ReadOnlySpan<byte> text)
    {
        ReadOnlySpan<byte> bom = [0xEF, 0xBB, 0xBF]; // as File.ReadAllText, which this replaces
        return s_utf8.GetString(text.StartsWith(bom) ? text[bom.Length..] : text);
    }

    public void ReplaceAllText(string path, string text) => (fs / path).Replace(s_utf8.GetBytes(text), FilePermissions);
}
