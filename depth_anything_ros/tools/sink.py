"""sink: receive depth and colorized depth, save colorized frames, print the frame rate."""
from __future__ import annotations

HELP = 'subscribe to depth and depth/colorized, save colorized PNGs, print the frame rate'


def add_arguments(parser):
    parser.add_argument('--out', metavar='DIR', help='folder for colorized PNGs (default: save nothing)')
    parser.add_argument('--save-every', type=int, default=1, help='save every Nth colorized frame')
    parser.add_argument('--frames', type=int, default=0, help='exit after N depth frames')
    parser.add_argument('--seconds', type=float, default=0.0, help='exit after this long')


def run(args) -> int:
    from ..ros.demo_nodes import SinkNode
    from ..ros.ros_main import run_node
    holder = {}

    def make():
        holder['node'] = SinkNode(args.out, args.save_every, args.frames, args.seconds)
        return holder['node']

    code = run_node(make)
    node = holder.get('node')
    if node is not None:
        print(f'sink: done: {len(node.depth_stamps)} depth frames at {node.fps():.2f} frames/s, '
              f'{node.colorized} colorized', flush=True)
        if not node.depth_stamps:
            return 1
    return code
