using System.Text;

namespace EioSharp.Kv;

/// <summary>LOLWUT [VERSION v] [arguments]: redis-server 7.0's computer art. Version 5 draws Georg Nees's
/// "Schotter" in Braille characters (LOLWUT VERSION 5 [columns] [squares-per-row] [squares-per-col], 66 8 12 by
/// default), version 6 a city skyline in terminal colours (LOLWUT VERSION 6 [columns] [rows], 80 20 by default), any
/// other version (and the default, as Redis 7.0's) only <c>Redis ver. &lt;version&gt;</c>. The last line names this
/// server's Redis version (INFO's redis_version), as Redis names its own. The art is random, as Redis's.</summary>
internal static class KvLolwut
{
    public static void Run(KvCommand command, RespWriter reply, string version)
    {
        string v = version;
        int first = 1;
        if (command.Count >= 3 && Ascii.EqualsIgnoreCase(command[1], "VERSION"u8))
        {
            if (!RespNumbers.TryParseInt64(command[2], out long ver))
            {
                reply.WriteError(KvErrors.NotInteger);
                return;
            }
            v = ((uint)ver).ToString(System.Globalization.CultureInfo.InvariantCulture) + ".0.0"; // C's (unsigned int) cast, as Redis
            first = 3;
        }
        var args = new List<byte[]>();
        for (int i = first; i < command.Count; i++) args.Add(command.ToArray(i));
        bool five = (v.Length > 2 && v[0] == '5' && v[1] == '.' && v[2] != '9') || (v.Length > 2 && v[0] == '4' && v[1] == '.' && v[2] == '9');
        bool six = (v.Length > 2 && v[0] == '6' && v[1] == '.' && v[2] != '9') || (v.Length > 2 && v[0] == '5' && v[1] == '.' && v[2] == '9');
        string? text;
        if (five) text = Schotter(args, reply, version);
        else if (six) text = Skyline(args, reply, version);
        else text = "Redis ver. " + version + "\n";
        if (text is not null) reply.WriteVerbatimString(text);
    }

    private static bool TryArg(List<byte[]> args, int index, ref long value, RespWriter reply)
    {
        if (args.Count <= index) return true;
        if (RespNumbers.TryParseInt64(args[index], out value)) return true;
        reply.WriteError(KvErrors.NotInteger);
        return false;
    }

    /// <summary>A canvas of pixels (colours 0..3); drawing outside it is ignored.</summary>
    private sealed class Canvas(int width, int height, byte background)
    {
        private readonly byte[] _pixels = Fill(width * height, background);

        public int Width { get; } = width;

        public int Height { get; } = height;

        private static byte[] Fill(int size, byte value)
        {
            var a = new byte[size];
            Array.Fill(a, value);
            return a;
        }

        public void Set(int x, int y, int color)
        {
            if (x >= 0 && x < Width && y >= 0 && y < Height) _pixels[x + y * Width] = (byte)color;
        }

        public int Get(int x, int y) => x >= 0 && x < Width && y >= 0 && y < Height ? _pixels[x + y * Width] : 0;

        /// <summary>Bresenham's line from (x1, y1) to (x2, y2).</summary>
        public void Line(int x1, int y1, int x2, int y2, int color)
        {
            int dx = Math.Abs(x2 - x1), dy = Math.Abs(y2 - y1);
            int sx = x1 < x2 ? 1 : -1, sy = y1 < y2 ? 1 : -1;
            int err = dx - dy;
            while (true)
            {
                Set(x1, y1, color);
                if (x1 == x2 && y1 == y2) break;
                int e2 = err * 2;
                if (e2 > -dy)
                {
                    err -= dy;
                    x1 += sx;
                }
                if (e2 < dx)
                {
                    err += dx;
                    y1 += sy;
                }
            }
        }

        /// <summary>A square centred on (x, y) with side <paramref name="size"/>, rotated by <paramref name="angle"/>
        /// radians: its corners are on the circle through them, from 45 degrees plus the angle, every 90 degrees.</summary>
        public void Square(int x, int y, float size, float angle, int color)
        {
            Span<int> px = stackalloc int[4], py = stackalloc int[4];
            float radius = (float)Math.Round(size / 1.4142135623f, MidpointRounding.AwayFromZero);
            float k = (float)(Math.PI / 4) + angle;
            for (int j = 0; j < 4; j++)
            {
                px[j] = (int)Math.Round(Math.Sin(k) * radius + x, MidpointRounding.AwayFromZero);
                py[j] = (int)Math.Round(Math.Cos(k) * radius + y, MidpointRounding.AwayFromZero);
                k += (float)(Math.PI / 2);
            }
            for (int j = 0; j < 4; j++) Line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }

    // Version 5: rows of squares, more and more rotated and displaced further down (Georg Nees, Schotter, 1968).
    private static string? Schotter(List<byte[]> args, RespWriter reply, string version)
    {
        long cols = 66, perRow = 8, perCol = 12;
        if (!TryArg(args, 0, ref cols, reply) || !TryArg(args, 1, ref perRow, reply) || !TryArg(args, 2, ref perCol, reply)) return null;
        cols = Math.Clamp(cols, 1, 1000);
        perRow = Math.Clamp(perRow, 1, 200);
        perCol = Math.Clamp(perCol, 1, 200);
        int width = (int)cols * 2;
        int padding = width > 4 ? 2 : 0;
        float side = (float)(width - padding * 2) / perRow;
        int height = (int)(side * perCol + padding * 2);
        var canvas = new Canvas(width, height, 0);
        Random random = Random.Shared;
        for (int y = 0; y < perCol; y++)
        {
            for (int x = 0; x < perRow; x++)
            {
                int sx = (int)(x * side + side / 2 + padding);
                int sy = (int)(y * side + side / 2 + padding);
                float angle = 0;
                if (y > 1)
                {
                    float r1 = random.NextSingle() / perCol * y, r2 = random.NextSingle() / perCol * y, r3 = random.NextSingle() / perCol * y;
                    if (random.Next(2) == 1) r1 = -r1;
                    if (random.Next(2) == 1) r2 = -r2;
                    if (random.Next(2) == 1) r3 = -r3;
                    angle = r1;
                    sx = (int)(sx + r2 * side / 3);
                    sy = (int)(sy + r3 * side / 3);
                }
                canvas.Square(sx, sy, side, angle, 1);
            }
        }

        // Each Braille character shows 2x4 pixels: dots 1-3 and 7 in the left column, 4-6 and 8 in the right one.
        var text = new StringBuilder();
        for (int y = 0; y < canvas.Height; y += 4)
        {
            for (int x = 0; x < canvas.Width; x += 2)
            {
                int bits = 0;
                if (canvas.Get(x, y) != 0) bits |= 1 << 0;
                if (canvas.Get(x, y + 1) != 0) bits |= 1 << 1;
                if (canvas.Get(x, y + 2) != 0) bits |= 1 << 2;
                if (canvas.Get(x + 1, y) != 0) bits |= 1 << 3;
                if (canvas.Get(x + 1, y + 1) != 0) bits |= 1 << 4;
                if (canvas.Get(x + 1, y + 2) != 0) bits |= 1 << 5;
                if (canvas.Get(x, y + 3) != 0) bits |= 1 << 6;
                if (canvas.Get(x + 1, y + 3) != 0) bits |= 1 << 7;
                text.Append((char)(0x2800 + bits));
            }
            if (y != canvas.Height - 1) text.Append('\n');
        }
        text.Append("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ").Append(version).Append('\n');
        return text.ToString();
    }

    // Version 6: a skyline of skyscrapers (two grey rows behind, black ones with lit windows in front).
    private static string? Skyline(List<byte[]> args, RespWriter reply, string version)
    {
        long cols = 80, rows = 20;
        if (!TryArg(args, 0, ref cols, reply) || !TryArg(args, 1, ref rows, reply)) return null;
        cols = Math.Clamp(cols, 1, 1000);
        rows = Math.Clamp(rows, 1, 1000);
        var canvas = new Canvas((int)cols, (int)rows, 3);
        Random random = Random.Shared;
        for (int color = 2; color >= 1; color--)
        {
            for (int offset = -10; offset < canvas.Width;)
            {
                offset += random.Next(8);
                int width = 10 + random.Next(9);
                int height = canvas.Height / 2 + random.Next(canvas.Height) / (color == 2 ? 2 : 3);
                Skyscraper(canvas, random, offset, width, height, windows: false, color);
                offset += color == 2 ? width / 2 : width + 1;
            }
        }
        for (int offset = -10; offset < canvas.Width;)
        {
            offset += random.Next(8);
            int width = 5 + random.Next(14);
            if (width % 4 != 0) width += width % 3;
            int height = canvas.Height / 3 + random.Next(canvas.Height) / 2;
            Skyscraper(canvas, random, offset, width, height, windows: true, 0);
            offset += width + 5;
        }

        var text = new StringBuilder();
        for (int y = 0; y < canvas.Height; y++)
        {
            for (int x = 0; x < canvas.Width; x++)
            {
                string escape = canvas.Get(x, y) switch
                {
                    1 => "0;90;100m", // grey 1
                    2 => "0;37;47m", // grey 2
                    3 => "0;97;107m", // white
                    _ => "0;30;40m", // black
                };
                text.Append("\u001b[").Append(escape).Append(" \u001b[0m");
            }
            if (y != canvas.Height - 1) text.Append('\n');
        }
        text.Append("\nDedicated to the 8 bit game developers of past and present.\nOriginal 8 bit image from Plaguemon by hikikomori. Redis ver. ")
            .Append(version).Append('\n');
        return text.ToString();
    }

    // One skyscraper standing on the bottom row: the roof two pixels narrower on each side; with windows, two pixels
    // wide and one tall, in one of the greys other than the building's, away from its borders.
    private static void Skyscraper(Canvas canvas, Random random, int xoff, int width, int height, bool windows, int buildingColor)
    {
        int bottom = canvas.Height - 1;
        int top = bottom - height + 1;
        for (int y = bottom; y >= top; y--)
        {
            for (int x = xoff; x < xoff + width; x++)
            {
                if (y == top && (x <= xoff + 1 || x >= xoff + width - 2)) continue;
                int color = buildingColor;
                if (windows && x > xoff + 1 && x < xoff + width - 2 && y > top + 1 && y < bottom - 1)
                {
                    int relX = x - (xoff + 1), relY = y - (top + 1);
                    if ((relX / 2) % 2 != 0 && relY % 2 != 0)
                    {
                        do color = 1 + random.Next(2);
                        while (color == buildingColor);
                        if (relX % 2 != 0) color = canvas.Get(x - 1, y);
                    }
                }
                canvas.Set(x, y, color);
            }
        }
    }
}
