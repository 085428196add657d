"""HTML routes: agent."""

from fastapi import APIRouter

router = APIRouter()
