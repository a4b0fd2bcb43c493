"""Rendering 3DIEBench views with Blender: objects, scene description, the bpy renderer and writers.

Only `iebench.render.blender` imports bpy; everything else here imports without Blender.
"""
