"""HTML routes: customers."""

from fastapi import APIRouter

router = APIRouter()
